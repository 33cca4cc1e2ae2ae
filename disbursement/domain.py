"""Pure rules of disbursement: limits, citizen ids, periods, statuses and references.

Nothing here touches a database, Flask or a queue; services and schemas derive every limit
from this module, so each is defined once.

**Citizen identity numbers (CCCD).** Twelve digits: a province code (the 63 codes of
Circular 07/2016/TT-BCA, 001 to 096), one digit for century and gender, two digits for the
year of birth within the century, then six serial digits. The century/gender digit is 0/1 for
men/women born in the 20th century, 2/3 in the 21st, 4/5 in the 22nd, 6/7 in the 23rd and 8/9
in the 24th. Every province code starts with 0, so a CCCD that Excel turned into a number has
always lost its leading zero: that is reported as such, never repaired by guessing.

**Batch statuses.** ``BATCH_TRANSITIONS`` is the whole machine::

    validating -> ready | invalid | cancelled
    ready      -> approved | cancelled            (a rejection cancels, with its reason)
    approved   -> running | cancelled
    running    -> paused | completed | completed_with_failures | cancelled
    paused     -> running | cancelled
    completed_with_failures -> running            (re-sending failed items)
    invalid, completed, cancelled: final

**Items.** ``pending -> sending -> paid | failed``; ``pending -> cancelled`` when its batch is
rejected or cancelled; ``sending -> sending`` when an attempt's outcome is unknown and it is
tried again after asking the rail; ``sending -> pending`` only when the rail said that nothing
was executed (insufficient funds at the source: the batch pauses until it is funded). An
item holds its **entitlement key** (program, beneficiary, period) while it is pending, sending
or paid; a cancelled item, or one failed for good, gives it up (see
``disbursement.models.PayoutItem.entitled``).

**References.** A payout item's reference is the bank rail's idempotency key and is written in
bank statements, so it is short, upper-case alphanumeric and unambiguous: ``P`` and 15
characters of an alphabet without 0, O, 1 and I (75 random bits), 16 in all, which fits an
MT940 ``:61:`` customer reference and the memo fields of Vietnamese banks.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import re
import secrets
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from qr.schemes import MAX_AMOUNT
from qr.text import fold

# ---------------------------------------------------------------------------------------------
# Limits

MAX_PROGRAM_CODE = 20
PROGRAM_CODE = re.compile(rf"[A-Z][A-Z0-9_-]{{1,{MAX_PROGRAM_CODE - 1}}}")
"""Program codes are ASCII upper case: they name ledger accounts (``program:{CODE}:budget``)."""
MAX_NAME = 200
MAX_LEGAL_BASIS = 500
MAX_REASON = 500
MAX_PLACE = 120
"""Ward and province names."""
MAX_FUNDING_REF = 64
FUNDING_REF = re.compile(rf"[A-Za-z0-9][A-Za-z0-9._:/-]{{0,{MAX_FUNDING_REF - 1}}}")
"""A funding reference goes into a ledger leaf's metadata: printable ASCII without spaces."""
MAX_AMOUNT_DONG = MAX_AMOUNT
"""An amount is 1 .. 9,999,999,999,999 dong (the EMVCo amount limit)."""
MAX_ROWS = 2_000_000
"""Rows of one payout batch."""
MAX_BATCH_TOTAL = 10**18
"""The largest total a batch may declare (the ledger's balance bound)."""
MAX_CELL = 1000
"""Characters of one cell of an uploaded file."""
MAX_FILENAME = 200
NATIONAL_ID_LENGTH = 12
ACCOUNT_NUMBER = re.compile(r"[0-9A-Z]{4,19}")
"""Bank account numbers: digits, or upper-case alphanumerics for wallets reached through a
bank (MoMo's ``99MM...``), 4 to 19 characters."""
BIN = re.compile(r"[0-9]{6}")
PHONE = re.compile(r"0[35789][0-9]{8}")
"""A Vietnamese mobile number in national form: 10 digits starting 03, 05, 07, 08 or 09."""
REFERENCE_LENGTH = 16
REFERENCE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
REFERENCE = re.compile(rf"P[{REFERENCE_ALPHABET}]{{{REFERENCE_LENGTH - 1}}}")
EARLIEST_YEAR = 2000
LATEST_YEAR = 2199
PERIOD = re.compile(r"(2[01][0-9]{2})-(0[1-9]|1[0-2])")
"""A period YYYY-MM: a month of the years EARLIEST_YEAR to LATEST_YEAR."""
EARLIEST_BIRTH = dt.date(1900, 1, 1)


class Gender(enum.StrEnum):
    MALE = "male"
    FEMALE = "female"


class BeneficiaryStatus(enum.StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    DECEASED = "deceased"


class ProgramStatus(enum.StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    CLOSED = "closed"


# ---------------------------------------------------------------------------------------------
# Problems found in input: a stable code, the column it concerns, and a message for people.


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a value; ``column`` is None for the row or the file as a whole."""

    code: str
    message: str
    column: str | None = None


# ---------------------------------------------------------------------------------------------
# Citizen identity numbers

PROVINCES: Mapping[str, str] = {
    "001": "Hà Nội",
    "002": "Hà Giang",
    "004": "Cao Bằng",
    "006": "Bắc Kạn",
    "008": "Tuyên Quang",
    "010": "Lào Cai",
    "011": "Điện Biên",
    "012": "Lai Châu",
    "014": "Sơn La",
    "015": "Yên Bái",
    "017": "Hòa Bình",
    "019": "Thái Nguyên",
    "020": "Lạng Sơn",
    "022": "Quảng Ninh",
    "024": "Bắc Giang",
    "025": "Phú Thọ",
    "026": "Vĩnh Phúc",
    "027": "Bắc Ninh",
    "030": "Hải Dương",
    "031": "Hải Phòng",
    "033": "Hưng Yên",
    "034": "Thái Bình",
    "035": "Hà Nam",
    "036": "Nam Định",
    "037": "Ninh Bình",
    "038": "Thanh Hóa",
    "040": "Nghệ An",
    "042": "Hà Tĩnh",
    "044": "Quảng Bình",
    "045": "Quảng Trị",
    "046": "Thừa Thiên Huế",
    "048": "Đà Nẵng",
    "049": "Quảng Nam",
    "051": "Quảng Ngãi",
    "052": "Bình Định",
    "054": "Phú Yên",
    "056": "Khánh Hòa",
    "058": "Ninh Thuận",
    "060": "Bình Thuận",
    "062": "Kon Tum",
    "064": "Gia Lai",
    "066": "Đắk Lắk",
    "067": "Đắk Nông",
    "068": "Lâm Đồng",
    "070": "Bình Phước",
    "072": "Tây Ninh",
    "074": "Bình Dương",
    "075": "Đồng Nai",
    "077": "Bà Rịa - Vũng Tàu",
    "079": "Hồ Chí Minh",
    "080": "Long An",
    "082": "Tiền Giang",
    "083": "Bến Tre",
    "084": "Trà Vinh",
    "086": "Vĩnh Long",
    "087": "Đồng Tháp",
    "089": "An Giang",
    "091": "Kiên Giang",
    "092": "Cần Thơ",
    "093": "Hậu Giang",
    "094": "Sóc Trăng",
    "095": "Bạc Liêu",
    "096": "Cà Mau",
}
"""The 63 province codes that open a CCCD, with the province each stands for."""

_DIGITS = re.compile(r"[0-9]+")
_EXPONENT = re.compile(r"[0-9](\.[0-9]+)?[eE]\+?[0-9]+")


def century_digit(year: int, gender: Gender | str) -> int:
    """Return the 4th CCCD digit for someone born in ``year`` with ``gender``."""
    century = (year - 1900) // 100
    if not 0 <= century <= 4:
        raise ValueError(f"no CCCD century digit for the year {year}")
    return century * 2 + (1 if Gender(gender) is Gender.FEMALE else 0)


def national_id_shape(value: str, *, from_number: bool = False) -> list[Problem]:
    """Check a CCCD on its own: twelve digits opening with a known province code.

    ``from_number`` says the value came from a numeric spreadsheet cell: since every province
    code starts with 0, such a cell has always lost the leading zero.
    """
    column = "national_id"
    if not value:
        return [Problem("national_id_missing", "The national id (CCCD) is empty.", column)]
    if _EXPONENT.fullmatch(value):
        return [
            Problem(
                "national_id_exponent",
                "The national id is in scientific notation (e.g. 1.23E+11): the spreadsheet "
                "turned it into a number and lost digits. Format the column as Text and enter it again.",
                column,
            )
        ]
    digits = value[:-2] if from_number and value.endswith(".0") else value
    lost = NATIONAL_ID_LENGTH - len(digits)
    if (
        _DIGITS.fullmatch(digits)
        and digits.isascii()
        and (from_number or (lost in (1, 2) and ("0" * lost + digits)[:3] in PROVINCES))
    ):
        return [
            Problem(
                "national_id_leading_zero_lost",
                f"The national id has {len(digits)} digits: a spreadsheet turned it into a number "
                "and dropped its leading zero. Format the column as Text and enter the 12 digits "
                "again; it is not repaired by guessing.",
                column,
            )
        ]
    if not (value.isascii() and _DIGITS.fullmatch(value) and len(value) == NATIONAL_ID_LENGTH):
        return [Problem("national_id_format", "A national id (CCCD) is exactly 12 digits.", column)]
    if value[:3] not in PROVINCES:
        return [
            Problem(
                "national_id_province_unknown",
                f"The national id starts with {value[:3]}, which is not one of the 63 province codes.",
                column,
            )
        ]
    return []


def national_id_problems(value: str, date_of_birth: dt.date, gender: Gender | str) -> list[Problem]:
    """Check a CCCD against the date of birth and gender it must agree with; one problem each."""
    problems = national_id_shape(value)
    if any(p.code != "national_id_province_unknown" for p in problems):
        return problems
    column = "national_id"
    digit = int(value[3])
    born_century = (date_of_birth.year - 1900) // 100
    if digit // 2 != born_century:
        problems.append(
            Problem(
                "national_id_century_mismatch",
                f"The 4th digit ({digit}) is for someone born in {1900 + (digit // 2) * 100}-"
                f"{1999 + (digit // 2) * 100}, but the date of birth is in {date_of_birth.year}.",
                column,
            )
        )
    if digit % 2 != (1 if Gender(gender) is Gender.FEMALE else 0):
        problems.append(
            Problem(
                "national_id_gender_mismatch",
                f"The 4th digit ({digit}) is for a {'woman' if digit % 2 else 'man'}, "
                f"but the gender is {Gender(gender).value}.",
                column,
            )
        )
    if value[4:6] != f"{date_of_birth.year % 100:02d}":
        problems.append(
            Problem(
                "national_id_birth_year_mismatch",
                f"The 5th and 6th digits ({value[4:6]}) say a birth year ending in {value[4:6]}, "
                f"but the date of birth is in {date_of_birth.year}.",
                column,
            )
        )
    return problems


# ---------------------------------------------------------------------------------------------
# Text, names, periods


def clean_text(value: str) -> str:
    """Return ``value`` in Unicode NFC with surrounding whitespace removed."""
    return unicodedata.normalize("NFC", value).strip()


_UNSTORABLE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
"""Control characters (Unicode category Cc) and lone surrogates (Cs)."""


def text_problem(column: str, value: str, limit: int) -> Problem | None:
    """Return why ``value`` cannot be stored as ``column``, or None."""
    if len(value) > limit:
        return Problem("too_long", f"{column} has more than {limit} characters.", column)
    if _UNSTORABLE.search(value):
        return Problem("invalid_character", f"{column} holds a control character.", column)
    return None


def name_key(name: str) -> str:
    """Return the key names are compared and searched by: no case, no diacritics, no spaces."""
    return fold(name)


def parse_period(value: str) -> str:
    """Return ``value`` if it is a period ``YYYY-MM`` in range; raise ValueError otherwise."""
    shape = (
        re.fullmatch(r"([0-9]{4})-([0-9]{2})", value) if isinstance(value, str) and value.isascii() else None
    )
    if shape is None:
        raise ValueError("A period is written YYYY-MM, e.g. 2026-11.")
    if not 1 <= int(shape.group(2)) <= 12:
        raise ValueError(f"{value}: the month must be 01 to 12.")
    if PERIOD.fullmatch(value) is None:
        raise ValueError(f"{value}: the year must be {EARLIEST_YEAR} to {LATEST_YEAR}.")
    return value


def period_of(day: dt.date) -> str:
    """Return the period ``YYYY-MM`` that contains ``day``."""
    return f"{day.year:04d}-{day.month:02d}"


def normalize_phone(value: str) -> str:
    """Return a phone number in national form: separators removed, +84 written as 0."""
    compact = re.sub(r"[\s.\-()]", "", value)
    if compact.startswith("+84"):
        compact = "0" + compact[3:]
    elif compact.startswith("84") and len(compact) == 11:
        compact = "0" + compact[2:]
    return compact


def phone_problem(value: str, *, from_number: bool = False) -> Problem | None:
    """Return why ``value`` is not a Vietnamese mobile number, or None."""
    digits = value[:-2] if from_number and value.endswith(".0") else value
    if from_number or (len(digits) == 9 and digits.isdigit() and digits[0] in "35789"):
        return Problem(
            "phone_leading_zero_lost",
            "The phone number lost its leading zero: a spreadsheet turned it into a number. "
            "Format the column as Text and enter it again.",
            "phone",
        )
    if not PHONE.fullmatch(value):
        return Problem("phone_invalid", "A phone number is 10 digits starting 03, 05, 07, 08 or 09.", "phone")
    return None


def account_problem(value: str, *, from_number: bool = False) -> Problem | None:
    """Return why ``value`` is not a bank account number, or None."""
    if from_number:
        return Problem(
            "account_number_not_text",
            "The account number is a number cell: a spreadsheet drops leading zeros and digits "
            "past the 15th. Format the column as Text and enter it again.",
            "account_number",
        )
    if not ACCOUNT_NUMBER.fullmatch(value):
        return Problem(
            "account_number_invalid",
            "An account number is 4 to 19 digits or upper-case letters.",
            "account_number",
        )
    return None


def parse_amount(value: str | int) -> int | Problem:
    """Return an amount in dong from a cell, or the Problem that makes it unreadable."""
    if isinstance(value, int):
        return value
    text = value.strip()
    if text.endswith(".0") and text[:-2].lstrip("-").isdigit() and text[:-2].isascii():
        text = text[:-2]  # a whole number from a numeric spreadsheet cell
    if text.lstrip("-").isdigit() and text.isascii() and len(text) <= 19:
        return int(text)
    if not text:
        return Problem("amount_missing", "The amount is empty.", "amount")
    if re.fullmatch(r"-?[0-9]+[.,][0-9]+", text) and text.isascii():
        return Problem(
            "amount_not_integer",
            "Amounts are whole dong, written with digits only (e.g. 1500000): no decimals, "
            "no thousands separators.",
            "amount",
        )
    return Problem("amount_invalid", "The amount is not a whole number of dong.", "amount")


def amount_problem(amount: int, cap: int | None) -> Problem | None:
    """Return why ``amount`` cannot be paid under a program with ``cap``, or None."""
    if amount <= 0:
        return Problem("amount_not_positive", f"The amount must be more than 0, not {amount}.", "amount")
    if amount > MAX_AMOUNT_DONG:
        return Problem("amount_out_of_range", f"The amount is beyond {MAX_AMOUNT_DONG:,} dong.", "amount")
    if cap is not None and amount > cap:
        return Problem(
            "amount_over_cap",
            f"The amount {amount:,} is over the program's cap of {cap:,} dong per person and period.",
            "amount",
        )
    return None


# ---------------------------------------------------------------------------------------------
# Batch and item statuses


class BatchStatus(enum.StrEnum):
    VALIDATING = "validating"
    INVALID = "invalid"
    READY = "ready"
    APPROVED = "approved"
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    COMPLETED_WITH_FAILURES = "completed_with_failures"
    CANCELLED = "cancelled"


B = BatchStatus
BATCH_TRANSITIONS: Mapping[BatchStatus, frozenset[BatchStatus]] = {
    B.VALIDATING: frozenset({B.READY, B.INVALID, B.CANCELLED}),
    B.READY: frozenset({B.APPROVED, B.CANCELLED}),
    B.INVALID: frozenset(),
    B.APPROVED: frozenset({B.RUNNING, B.CANCELLED}),
    B.RUNNING: frozenset({B.PAUSED, B.COMPLETED, B.COMPLETED_WITH_FAILURES, B.CANCELLED}),
    B.PAUSED: frozenset({B.RUNNING, B.CANCELLED}),
    B.COMPLETED: frozenset(),
    B.COMPLETED_WITH_FAILURES: frozenset({B.RUNNING}),
    B.CANCELLED: frozenset(),
}
OPEN_BATCH_STATUSES = frozenset(s for s in BatchStatus if s not in {B.INVALID, B.COMPLETED, B.CANCELLED})


class ItemStatus(enum.StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    PAID = "paid"
    FAILED = "failed"
    CANCELLED = "cancelled"


I = ItemStatus  # noqa: E741
ITEM_TRANSITIONS: Mapping[ItemStatus, frozenset[ItemStatus]] = {
    I.PENDING: frozenset({I.SENDING, I.CANCELLED}),
    I.SENDING: frozenset({I.SENDING, I.PAID, I.FAILED, I.PENDING}),
    I.PAID: frozenset(),
    I.FAILED: frozenset(),
    I.CANCELLED: frozenset(),
}
ENTITLED_ITEM_STATUSES = frozenset({I.PENDING, I.SENDING, I.PAID})
"""Statuses in which an item may hold its entitlement key."""


class IllegalTransition(ValueError):
    """A status change that the state machine does not allow."""

    def __init__(self, kind: str, current: str, target: str, allowed: Iterable[str]) -> None:
        allowed = sorted(allowed)
        super().__init__(
            f"A {kind} cannot go from {current} to {target}; from {current} it can go to "
            f"{', '.join(allowed) if allowed else 'nothing: it is final'}."
        )
        self.current = current
        self.target = target
        self.allowed = allowed


def batch_transition(current: BatchStatus | str, target: BatchStatus | str) -> BatchStatus:
    """Return ``target`` if a batch may go there from ``current``; raise IllegalTransition."""
    now, then = BatchStatus(current), BatchStatus(target)
    allowed = BATCH_TRANSITIONS[now]
    if then not in allowed:
        raise IllegalTransition("batch", now, then, allowed)
    return then


def item_transition(current: ItemStatus | str, target: ItemStatus | str) -> ItemStatus:
    """Return ``target`` if an item may go there from ``current``; raise IllegalTransition."""
    now, then = ItemStatus(current), ItemStatus(target)
    allowed = ITEM_TRANSITIONS[now]
    if then not in allowed:
        raise IllegalTransition("payout item", now, then, allowed)
    return then


def new_reference() -> str:
    """Return a fresh payout reference: ``P`` and 15 random characters, 16 in all."""
    return "P" + "".join(secrets.choice(REFERENCE_ALPHABET) for _ in range(REFERENCE_LENGTH - 1))


# ---------------------------------------------------------------------------------------------
# Ledger accounts of a program (README: chart of accounts)


def budget_account(code: str) -> str:
    """Return the ledger account of a program's budget (asset, never negative)."""
    return f"program:{code}:budget"


def funding_account(code: str) -> str:
    """Return the ledger account a program's funding comes from (equity)."""
    return f"program:{code}:funding"


def benefits_account(code: str) -> str:
    """Return the ledger account of the benefits a program has paid (expense)."""
    return f"program:{code}:benefits"


# ---------------------------------------------------------------------------------------------
# Execution: failure reasons, retries, receipts

RAIL_UNAVAILABLE = "rail_unavailable"
"""The reason of an item that met only transient rail errors until its attempts ran out."""
RETURNED = "returned"
"""The reason of an item the receiving bank paid and then returned (REVERSED)."""
DESTINATION_REASONS = frozenset(
    {"account_closed", "account_not_found", "account_frozen", "name_mismatch", RETURNED}
)
"""Failures that a corrected destination can cure: re-sent only if the registry's changed."""
RETRY_ANYWAY_REASONS = frozenset({RAIL_UNAVAILABLE})
"""Failures that may succeed on a later try whatever the destination."""
MAX_BACKOFF = 300.0
RECEIPT_LENGTH = 12
RECEIPT = re.compile(rf"[{REFERENCE_ALPHABET}]{{{RECEIPT_LENGTH}}}")
"""A receipt code: 12 characters of the reference alphabet (60 random bits), shown in groups of 4."""
RECEIPT_PATH = re.compile(r"(?:[2-9A-HJ-NP-Za-hj-np-z]{4}-?){2}[2-9A-HJ-NP-Za-hj-np-z]{4}")
"""A receipt code as a URL segment: either case, the dashes between groups optional."""


def backoff(attempt: int, base: float, draw: float) -> float:
    """Return the delay before try ``attempt + 1``: ``base * 2**(attempt-1)``, capped, jittered.

    ``draw`` is a uniform number in [0, 1); the delay is between half and all of the
    exponential step ("equal jitter"), so workers that failed together do not retry together.
    """
    step = min(MAX_BACKOFF, base * 2.0 ** max(0, attempt - 1))
    return step / 2 + step / 2 * draw


def chunk_reference(references: Iterable[str]) -> str:
    """Return the rail reference of a chunk: ``C`` and 15 characters derived from its set of items.

    The same set always gives the same reference, so sending it again replays the chunk at the
    rail (its idempotency key) instead of being refused as a key reused with another body.
    """
    digest = hashlib.sha256(",".join(sorted(references)).encode()).digest()
    number = int.from_bytes(digest[:10], "big")
    chars = []
    for _ in range(REFERENCE_LENGTH - 1):
        number, rest = divmod(number, len(REFERENCE_ALPHABET))
        chars.append(REFERENCE_ALPHABET[rest])
    return "C" + "".join(chars)


def new_receipt_code() -> str:
    """Return a fresh receipt code (12 characters without ambiguous ones)."""
    return "".join(secrets.choice(REFERENCE_ALPHABET) for _ in range(RECEIPT_LENGTH))


def format_receipt(code: str) -> str:
    """Return a receipt code as people read it: ``ABCD-EFGH-JKLM``."""
    return "-".join(code[i : i + 4] for i in range(0, len(code), 4))


def parse_receipt(text: str) -> str | None:
    """Return the receipt code ``text`` names (any case, dashes and spaces ignored), or None."""
    cleaned = re.sub(r"[\s-]", "", text).upper()
    return cleaned if RECEIPT.fullmatch(cleaned) else None

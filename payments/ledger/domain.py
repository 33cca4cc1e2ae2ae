"""Pure rules of the double-entry book: what a valid transaction is, and every limit of the book.

Amounts are integer dong: positive debits, negative credits. A transaction has two to
``MAX_POSTINGS`` postings, none zero, each within the EMVCo 13-digit bound, summing to zero. An
attestation has none. Every limit is defined here once; the API schemas derive theirs from it.

Identifiers are plain ASCII, so that two codes that look alike are the same code:

* account codes: ``ACCOUNT_CODE`` (letters, digits, ``.``, ``_``, ``:``, ``-``; a letter or
  digit first; at most 120), e.g. ``program:TCXH:budget``;
* kinds: ``KIND`` (lower-case letters, digits, ``_``, ``.``, ``-``; a letter first; at most 40);
* idempotency keys: 1 to 200 printable ASCII characters.

Memos and reversal reasons are text for people: Unicode, stored NFC, without control
characters. Balances stay within ``MAX_BALANCE`` of zero, far inside a 64-bit integer, so no
sum of postings can overflow a database column; a posting that would take a balance beyond it
is refused like one that would take a no-negative account below zero.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import hashlib
import json
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from payments.ledger.canonical import ATTESTATION, format_timestamp, metadata_problems
from payments.ledger.errors import InvalidTransaction
from qr.schemes import MAX_AMOUNT

CURRENCY = "VND"
MAX_KEY = 200
MAX_KIND = 40
MAX_MEMO = 500
MAX_REASON = 200
MAX_CODE = 120
MAX_POSTINGS = 1000
MAX_BALANCE = 10**18
"""How far from zero any balance may go, in đồng; with at most MAX_POSTINGS postings of at most
MAX_AMOUNT per transaction, no update can overflow a signed 64-bit column on the way there."""
MAX_TX_ID = 2**63 - 1
EARLIEST = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
LATEST = dt.datetime(2200, 1, 1, tzinfo=dt.UTC)
"""``occurred_at`` lies in [EARLIEST, LATEST): no real movement is outside, and no instant inside
overflows when it is converted to UTC."""

ACCOUNT_CODE = re.compile(rf"[A-Za-z0-9][A-Za-z0-9._:-]{{0,{MAX_CODE - 1}}}")
KIND = re.compile(rf"[a-z][a-z0-9_.-]{{0,{MAX_KIND - 1}}}")
KEY = re.compile(rf"[!-~]{{1,{MAX_KEY}}}")
PUBLIC_ID = re.compile(r"TX-([0-9]{1,19})")


class AccountKind(enum.StrEnum):
    ASSET = "asset"
    LIABILITY = "liability"
    EQUITY = "equity"
    INCOME = "income"
    EXPENSE = "expense"


@dataclass(frozen=True)
class Posting:
    """One line of a transaction: ``amount`` dong on ``account`` (debit > 0, credit < 0)."""

    account: str
    amount: int


@dataclass(frozen=True)
class TransactionSpec:
    """What a caller asks the book to record."""

    idempotency_key: str
    kind: str
    memo: str
    postings: Sequence[Posting]
    occurred_at: dt.datetime | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    reverses: int | None = None

    def normalized(self) -> TransactionSpec:
        """Return the spec with its memo in Unicode NFC, the form the book stores."""
        return dataclasses.replace(self, memo=nfc(self.memo))

    def content_hash(self) -> str:
        """Hash what must match when the same idempotency key is replayed."""
        body = {
            "kind": self.kind,
            "memo": self.memo,
            "postings": [[p.account, p.amount] for p in self.postings],
            "occurred_at": format_timestamp(self.occurred_at) if self.occurred_at else None,
            "metadata": dict(self.metadata),
            "reverses": self.reverses,
        }
        # validate() has already checked that the metadata is canonical JSON.
        encoded = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(encoded.encode()).hexdigest()


@dataclass(frozen=True)
class Recorded:
    """A transaction as the book holds it."""

    id: int
    idempotency_key: str
    kind: str
    memo: str
    occurred_at: dt.datetime
    metadata: Mapping[str, Any]
    postings: tuple[Posting, ...]
    reverses_id: int | None
    created_at: dt.datetime
    log_index: int | None = None

    @property
    def public_id(self) -> str:
        """Return the transaction's opaque public id."""
        return public_id(self.id)


def validate(spec: TransactionSpec) -> None:
    """Raise InvalidTransaction with a precise code if ``spec`` breaks a rule of the book."""
    if not KEY.fullmatch(spec.idempotency_key):
        raise InvalidTransaction(
            f"idempotency_key must be 1 to {MAX_KEY} printable ASCII characters.",
            code="field_invalid",
            field="idempotency_key",
        )
    if not KIND.fullmatch(spec.kind):
        raise InvalidTransaction(
            f"kind must be 1 to {MAX_KIND} of a-z, 0-9, '_', '.', '-', starting with a letter.",
            code="field_invalid",
            field="kind",
        )
    check_text("memo", spec.memo, MAX_MEMO)
    if spec.occurred_at is not None:
        check_instant("occurred_at", spec.occurred_at)
    problems = metadata_problems(spec.metadata)
    if problems:
        raise InvalidTransaction("; ".join(problems), code="metadata_invalid", field="metadata")
    if spec.kind == ATTESTATION:
        if spec.postings or spec.reverses is not None:
            raise InvalidTransaction(
                f"An {ATTESTATION} moves no money: it has no postings and reverses nothing.",
                code="field_invalid",
                field="postings",
            )
        return
    if len(spec.postings) < 2:
        raise InvalidTransaction("A transaction needs at least two postings.", code="postings_too_few")
    if len(spec.postings) > MAX_POSTINGS:
        raise InvalidTransaction(
            f"A transaction has at most {MAX_POSTINGS} postings, not {len(spec.postings)}.",
            code="postings_too_many",
        )
    for i, p in enumerate(spec.postings):
        check_account_code(p.account, f"postings[{i}].account")
        if not isinstance(p.amount, int) or isinstance(p.amount, bool):
            raise InvalidTransaction(
                f"postings[{i}].amount must be an integer number of dong.",
                code="field_invalid",
                field=f"postings[{i}].amount",
            )
        if p.amount == 0:
            raise InvalidTransaction(f"postings[{i}] has a zero amount.", code="posting_zero", posting=i)
        if abs(p.amount) > MAX_AMOUNT:
            raise InvalidTransaction(
                f"postings[{i}].amount is beyond {MAX_AMOUNT:,} dong.", code="amount_out_of_range", posting=i
            )
    total = sum(p.amount for p in spec.postings)
    if total != 0:
        raise InvalidTransaction(
            f"Postings sum to {total}, not 0: debits and credits must balance.",
            code="postings_unbalanced",
            imbalance=total,
        )


def check_account_code(code: str, field: str = "code") -> None:
    """Raise InvalidTransaction unless ``code`` is a well-formed account code."""
    if not isinstance(code, str) or not ACCOUNT_CODE.fullmatch(code):
        raise InvalidTransaction(
            f"{field}: an account code is 1 to {MAX_CODE} of A-Z, a-z, 0-9, '.', '_', ':', '-', "
            "starting with a letter or digit.",
            code="account_code_invalid",
            field=field,
        )


def check_text(name: str, value: str, limit: int) -> None:
    """Raise InvalidTransaction unless ``value`` is NFC text of at most ``limit`` characters."""
    if len(value) > limit:
        raise InvalidTransaction(
            f"{name} is longer than {limit} characters.", code="field_invalid", field=name
        )
    if any(unicodedata.category(c) in {"Cc", "Cs"} for c in value):
        raise InvalidTransaction(
            f"{name} must not contain control characters or lone surrogates.",
            code="field_invalid",
            field=name,
        )


def check_instant(name: str, moment: dt.datetime) -> None:
    """Raise InvalidTransaction unless ``moment`` is aware and between EARLIEST and LATEST."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise InvalidTransaction(f"{name} needs a time zone.", code="field_invalid", field=name)
    try:
        inside = EARLIEST <= moment < LATEST
    except OverflowError:  # an offset pushes the instant past datetime's range
        inside = False
    if not inside:
        raise InvalidTransaction(
            f"{name} must lie between {EARLIEST.year} and {LATEST.year - 1}.",
            code="field_invalid",
            field=name,
        )


def nfc(text: str) -> str:
    """Return ``text`` in Unicode NFC, the form the book stores text in."""
    return unicodedata.normalize("NFC", text)


def mirror(postings: Sequence[Posting]) -> list[Posting]:
    """Return the postings that undo ``postings``."""
    return [Posting(p.account, -p.amount) for p in postings]


def net_by_account(specs: Sequence[TransactionSpec]) -> dict[str, int]:
    """Sum the postings of ``specs`` per account."""
    out: dict[str, int] = {}
    for spec in specs:
        for p in spec.postings:
            out[p.account] = out.get(p.account, 0) + p.amount
    return out


def public_id(tx_id: int) -> str:
    """Return the opaque public id of transaction row ``tx_id``."""
    return f"TX-{tx_id:010d}"


def parse_public_id(value: str) -> int | None:
    """Return the row id named by a public id, or None if it is not one.

    Only ASCII digits count: ``int()`` would also read fullwidth or Arabic-Indic digits, and
    "TX-１" must not name TX-1.
    """
    found = PUBLIC_ID.fullmatch(value)
    if found is None:
        return None
    tx_id = int(found.group(1))
    return tx_id if 1 <= tx_id <= MAX_TX_ID else None

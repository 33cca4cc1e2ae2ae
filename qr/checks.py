"""Field-level checks: deviations that are reported, not fatal.

Real codes in circulation bend the rules (long names, Vietnamese outside tag 64, an amount on
a static code), and a banking app still pays them. ``decode`` therefore accepts them and
returns what it saw as :class:`Issue` values. Each has a stable ``code``, the dotted ``tag``
it concerns (``None`` for the payload as a whole) and a message:

===========================  ======================================================
code                         meaning
===========================  ======================================================
``payload_too_long``         more than 512 characters
``non_ascii``                non-ASCII text outside the language template 64
``empty_value``              an element with length ``00``
``missing_field``            a field EMVCo or NAPAS requires is absent
``too_long``                 a value longer than its EMVCo limit (59 > 25, 60 > 15 ...)
``invalid_initiation``       ``01`` is neither ``11`` (static) nor ``12`` (dynamic)
``invalid_amount``           ``54`` is not a positive whole number of the currency
``amount_fraction``          ``54`` has a zero fraction (``1000.00``); VND has no minor unit
``amount_on_static``         a static (``11``) code carries an amount
``invalid_currency``         ``53`` is not three digits, or a VietQR code is not in VND
``invalid_country``          ``58`` is not two capital letters, or a VietQR code is not VN
``invalid_mcc``              ``52`` is not four digits
``missing_guid``             an account or unreserved template has no GUID (``00``)
``unreserved_primitive``     an unreserved id (80-99) holds a plain value, not a template
``invalid_bin``              the VietQR BIN is not six digits
``unknown_bin``              the VietQR BIN is not in the bank directory
``bank_not_receiving``       the directory says that bank does not receive VietQR transfers
``unknown_service``          the VietQR service is not one of the four NAPAS defines
``invalid_account``          the account, card or merchant id is not what the service needs
``crc_lowercase``            the CRC is written in lowercase hex
===========================  ======================================================
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from qr import banks
from qr.schemes import (
    ADDITIONAL_FIELDS,
    ADDITIONAL_LIMIT,
    MAX_PAYLOAD,
    MERCHANT_ACCOUNT_IDS,
    SERVICES,
    TOP_LIMITS,
    UNRESERVED_IDS,
    VND,
)

__all__ = ["Issue", "check"]

_DIGITS = frozenset("0123456789")
_UPPER = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_ACCOUNT_IDS = MERCHANT_ACCOUNT_IDS | UNRESERVED_IDS
_LIMITED = frozenset(("59", "60", "61"))
_LIMITS = {"59": (25, "merchant name"), "60": (15, "merchant city"), "61": (10, "postal code")}


@dataclass(frozen=True, slots=True)
class Issue:
    """A field-level deviation found while decoding."""

    code: str
    tag: str | None
    message: str

    def to_dict(self) -> dict[str, str | None]:
        """Return the issue as the JSON object ``to_dict`` embeds."""
        return {"code": self.code, "tag": self.tag, "message": self.message}


_Add = Callable[[Issue], None]


def _digits(value: str, size: int) -> bool:
    return len(value) == size and _DIGITS.issuperset(value)


def check(
    raw: str,
    fields: dict[str, str],
    templates: dict[str, dict[str, str]],
    scheme: str,
) -> tuple[list[Issue], int | None]:
    """Return the issues of a structurally valid payload, and its amount as an integer."""
    issues: list[Issue] = []
    add = issues.append
    vietqr = scheme == "vietqr"

    if len(raw) > MAX_PAYLOAD:
        add(Issue("payload_too_long", None, f"payload has {len(raw)} characters; EMVCo allows {MAX_PAYLOAD}"))
    if "" in fields.values():
        for tag, value in fields.items():
            if not value:
                add(Issue("empty_value", tag, f"element {tag} has length 00"))
    # Set intersections run in C; a typical payload has one or two account templates and
    # few of the length-bounded fields, so these loops rarely turn more than once.
    for tag in sorted(_ACCOUNT_IDS.intersection(fields)):
        template = templates.get(tag)
        if template is None:
            message = f"unreserved id {tag} holds {fields[tag]!r}, not a template"
            add(Issue("unreserved_primitive", tag, message))
        elif template and "00" not in template:
            add(Issue("missing_guid", tag, f"template {tag} has no globally unique identifier (00)"))
    if not raw.isascii():
        _check_ascii(fields, templates, add)
    if fields["63"] != fields["63"].upper():
        add(Issue("crc_lowercase", "63", "CRC is lowercase hex; EMVCo payloads carry uppercase"))

    initiation = fields.get("01")
    if initiation is None:
        if vietqr:
            add(Issue("missing_field", "01", "point of initiation (01) is absent; NAPAS requires it"))
    elif initiation not in ("11", "12"):
        add(Issue("invalid_initiation", "01", f"point of initiation is {initiation!r}, not 11 or 12"))

    amount = _check_amount(fields.get("54"), initiation, add)
    _check_codes(fields, vietqr, add)
    for tag in _LIMITED.intersection(fields):
        limit, name = _LIMITS[tag]
        if len(fields[tag]) > limit:
            add(Issue("too_long", tag, f"{name} has {len(fields[tag])} characters; the limit is {limit}"))
    additional = templates.get("62")
    if additional:
        for sub, value in additional.items():
            if sub in ADDITIONAL_FIELDS and len(value) > ADDITIONAL_LIMIT:
                name = ADDITIONAL_FIELDS[sub]
                add(Issue("too_long", f"62.{sub}", f"{name} has {len(value)} characters; the limit is 25"))
    language = templates.get("64")
    if language is not None:
        _check_language(language, add)
    if vietqr:
        _check_vietqr(templates, add)
    return issues, amount


def _check_ascii(fields: dict[str, str], templates: dict[str, dict[str, str]], add: _Add) -> None:
    for tag, value in fields.items():
        if tag == "64" or value.isascii():
            continue
        template = templates.get(tag)
        if template is None:
            add(Issue("non_ascii", tag, f"element {tag} has non-ASCII text; only tag 64 may"))
            continue
        for sub, sub_value in template.items():
            if not sub_value.isascii():
                path = f"{tag}.{sub}"
                add(Issue("non_ascii", path, f"element {path} has non-ASCII text; only tag 64 may"))


def _check_amount(value: str | None, initiation: str | None, add: _Add) -> int | None:
    if value is None:
        return None
    if not (value.isascii() and value.isdigit()):
        whole, _, fraction = value.partition(".")
        if not whole or not _DIGITS.issuperset(whole) or not _DIGITS.issuperset(fraction):
            add(Issue("invalid_amount", "54", f"amount {value!r} is not a number"))
            return None
        if fraction.strip("0"):
            add(Issue("invalid_amount", "54", f"amount {value!r} has a fraction; VND has no minor unit"))
            return None
        add(Issue("amount_fraction", "54", f"amount {value!r} has a zero fraction; VND has no minor unit"))
        value_int = int(whole)
    else:
        value_int = int(value)
    limit = TOP_LIMITS["54"][0]
    if len(value) > limit:
        add(Issue("too_long", "54", f"amount has {len(value)} characters; the limit is {limit}"))
    if value_int == 0:
        add(Issue("invalid_amount", "54", "amount is zero"))
    if initiation == "11":
        add(Issue("amount_on_static", "54", "a static code (01 = 11) carries an amount"))
    return value_int


def _check_codes(fields: dict[str, str], vietqr: bool, add: _Add) -> None:
    mcc = fields.get("52")
    if mcc is not None and not _digits(mcc, 4):
        add(Issue("invalid_mcc", "52", f"merchant category code {mcc!r} is not four digits"))
    currency = fields.get("53")
    if currency == VND:
        pass
    elif currency is None:
        add(Issue("missing_field", "53", "transaction currency (53) is absent"))
    elif not _digits(currency, 3):
        add(Issue("invalid_currency", "53", f"currency {currency!r} is not an ISO 4217 numeric code"))
    elif vietqr and currency != VND:
        add(Issue("invalid_currency", "53", f"VietQR is paid in VND (704), not {currency}"))
    country = fields.get("58")
    if country == "VN":
        pass
    elif country is None:
        add(Issue("missing_field", "58", "country code (58) is absent"))
    elif len(country) != 2 or not _UPPER.issuperset(country):
        add(Issue("invalid_country", "58", f"country {country!r} is not an ISO 3166 alpha-2 code"))
    elif vietqr and country != "VN":
        add(Issue("invalid_country", "58", f"a VietQR code is for VN, not {country}"))


def _check_language(language: dict[str, str], add: _Add) -> None:
    preference = language.get("00")
    if preference is None:
        add(Issue("missing_field", "64.00", "language template has no language preference (00)"))
    for sub, limit, name in (("01", 25, "alternate merchant name"), ("02", 15, "alternate merchant city")):
        value = language.get(sub)
        if value is not None and len(value) > limit:
            add(Issue("too_long", f"64.{sub}", f"{name} has {len(value)} characters; the limit is {limit}"))


def _check_vietqr(templates: dict[str, dict[str, str]], add: _Add) -> None:
    service = templates["38"].get("02")
    if service is None:
        add(Issue("missing_field", "38.02", "VietQR service code (38.02) is absent"))
    elif service not in SERVICES:
        add(Issue("unknown_service", "38.02", f"service {service!r} is not one of {', '.join(SERVICES)}"))
    beneficiary = templates.get("38.01")
    if beneficiary is None:
        add(Issue("missing_field", "38.01", "VietQR beneficiary template (38.01) is absent"))
        return
    bin_ = beneficiary.get("00")
    if bin_ is None:
        add(Issue("missing_field", "38.01.00", "beneficiary bank BIN (38.01.00) is absent"))
    elif not _digits(bin_, 6):
        add(Issue("invalid_bin", "38.01.00", f"BIN {bin_!r} is not six digits"))
    else:
        bank = banks.by_bin(bin_)
        if bank is None:
            add(Issue("unknown_bin", "38.01.00", f"BIN {bin_} is not in the bank directory"))
        elif not bank.receives_transfers:
            message = f"{bank.short_name} does not receive VietQR transfers"
            add(Issue("bank_not_receiving", "38.01.00", message))
    account = beneficiary.get("01")
    if account is None:
        add(Issue("missing_field", "38.01.01", "beneficiary account (38.01.01) is absent"))
    elif service == "QRIBFTTC" and not (16 <= len(account) <= 19 and _DIGITS.issuperset(account)):
        add(Issue("invalid_account", "38.01.01", "a card number has 16 to 19 digits"))
    elif len(account) > 19:
        add(Issue("invalid_account", "38.01.01", f"account has {len(account)} characters; NAPAS allows 19"))

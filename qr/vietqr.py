"""Decode EMVCo merchant-presented payloads, with the VietQR model on top.

``decode`` is strict about structure and lenient about content:

* Structure that cannot be trusted raises one :class:`qr.errors.DecodeError` subclass, with
  a stable code and the character offset of the fault. The checks run in this order: empty
  input; element ids and lengths (``invalid_id``, ``invalid_length``, ``truncated``,
  ``length_overflow``); duplicate top-level ids; the format indicator ``00`` = ``01`` first;
  the CRC (``crc_missing``, ``crc_not_last``, ``crc_malformed``, ``invalid_character``,
  ``crc_mismatch``); then the nested templates (``malformed_template``). Offsets count
  characters from 0; for ``crc_mismatch`` it is where the four CRC digits start.
* Field-level deviations that codes in circulation have are returned as :class:`Issue`
  values in ``Payload.issues``; :mod:`qr.checks` lists every issue code.

Nested templates are parsed: merchant account information (26-51), additional data (62),
language (64), unreserved templates (80-99) and, in VietQR, the beneficiary template 38-01.
Unreserved ids whose value is not TLV (MoMo puts a bare three-digit value in 80) are kept as
primitives and reported. Every element, known or not, is kept in order, so
``payload.encode()`` reproduces the input exactly, including a lowercase CRC.

Treat a decoded payload as read-only. Only the structure and the issues are computed up front;
the views (``additional``, ``merchant_accounts``, ``to_dict``) are built when asked for.
"""

from __future__ import annotations

from binascii import crc_hqx
from dataclasses import dataclass
from typing import Any, NoReturn

from qr import banks
from qr.checks import Issue, check
from qr.errors import (
    CRCMalformed,
    CRCMismatch,
    CRCMissing,
    CRCNotLast,
    DecodeError,
    DuplicateTag,
    EmptyPayload,
    FormatIndicator,
    InvalidCharacter,
    MalformedTemplate,
)
from qr.schemes import (
    ADDITIONAL_FIELDS,
    MERCHANT_ACCOUNT_IDS,
    NAPAS_GUID,
    STRICT_TEMPLATE_IDS,
    UNRESERVED_IDS,
    scheme_of_guid,
)
from qr.tlv import Element, join, scan, values

__all__ = ["AdditionalData", "Issue", "MerchantAccount", "Payload", "decode"]

_HEX = frozenset("0123456789abcdefABCDEF")
_TEMPLATE_IDS = STRICT_TEMPLATE_IDS | UNRESERVED_IDS


@dataclass(frozen=True, slots=True)
class AdditionalData:
    """The additional data template (62), with ``None`` for every absent field."""

    bill_number: str | None = None
    purpose: str | None = None
    reference: str | None = None
    store: str | None = None
    terminal: str | None = None
    mobile: str | None = None
    customer: str | None = None
    loyalty: str | None = None

    def to_dict(self) -> dict[str, str | None]:
        """Return the fields in the order of the JSON shape."""
        return {
            "bill_number": self.bill_number,
            "purpose": self.purpose,
            "reference": self.reference,
            "store": self.store,
            "terminal": self.terminal,
            "mobile": self.mobile,
            "customer": self.customer,
            "loyalty": self.loyalty,
        }


@dataclass(frozen=True, slots=True)
class MerchantAccount:
    """One merchant account template (26-51) or unreserved template (80-99)."""

    tag: str
    guid: str | None
    scheme: str | None
    fields: dict[str, str]


class Payload:
    """A decoded payload: its elements, parsed templates, issues and VietQR fields."""

    __slots__ = ("_tags", "amount", "fields", "issues", "raw", "scheme", "templates")

    raw: str
    fields: dict[str, str]
    templates: dict[str, dict[str, str]]
    issues: tuple[Issue, ...]
    scheme: str
    amount: int | None

    def __init__(
        self, raw: str, fields: dict[str, str], templates: dict[str, dict[str, str]], scheme: str
    ) -> None:
        self.raw = raw
        self.fields = fields
        self.templates = templates
        self.scheme = scheme
        self._tags: tuple[Element, ...] | None = None
        found, self.amount = check(raw, fields, templates, scheme)
        self.issues = tuple(found)

    def __repr__(self) -> str:
        return f"<Payload scheme={self.scheme} {self.raw!r}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Payload) and other.raw == self.raw

    def __hash__(self) -> int:
        return hash(self.raw)

    def get(self, path: str) -> str | None:
        """Return the value at a dotted path such as ``"54"``, ``"62.08"`` or ``"38.01.00"``."""
        head, _, tail = path.rpartition(".")
        if not head:
            return self.fields.get(tail)
        template = self.templates.get(head)
        return None if template is None else template.get(tail)

    @property
    def tags(self) -> tuple[Element, ...]:
        """Return the top-level elements as ``(id, value, offset)``, in payload order."""
        if self._tags is None:
            self._tags = tuple(scan(self.raw)[0])
        return self._tags

    def encode(self) -> str:
        """Return the payload re-encoded from its elements: exactly the decoded input."""
        return join(self.fields.items())

    @property
    def is_vietqr(self) -> bool:
        """Tell whether tag 38 carries the NAPAS GUID."""
        return self.scheme == "vietqr"

    @property
    def initiation(self) -> str | None:
        """Return ``"static"`` (``11``), ``"dynamic"`` (``12``), or ``None``."""
        return {"11": "static", "12": "dynamic"}.get(self.fields.get("01", ""))

    @property
    def bin(self) -> str | None:
        """Return the beneficiary bank's BIN (VietQR only)."""
        return self.get("38.01.00") if self.is_vietqr else None

    @property
    def account(self) -> str | None:
        """Return the beneficiary account, card or merchant id (VietQR only)."""
        return self.get("38.01.01") if self.is_vietqr else None

    @property
    def service(self) -> str | None:
        """Return the VietQR service code, such as ``QRIBFTTA``."""
        return self.get("38.02") if self.is_vietqr else None

    @property
    def bank(self) -> banks.Bank | None:
        """Return the directory entry of the beneficiary bank, if the BIN is known."""
        bin_ = self.bin
        return None if bin_ is None else banks.by_bin(bin_)

    @property
    def currency(self) -> str | None:
        """Return the ISO 4217 numeric currency (``"704"`` for VND)."""
        return self.fields.get("53")

    @property
    def country(self) -> str | None:
        """Return the ISO 3166 alpha-2 country code."""
        return self.fields.get("58")

    @property
    def mcc(self) -> str | None:
        """Return the merchant category code."""
        return self.fields.get("52")

    @property
    def merchant_name(self) -> str | None:
        """Return the merchant name (59)."""
        return self.fields.get("59")

    @property
    def merchant_city(self) -> str | None:
        """Return the merchant city (60)."""
        return self.fields.get("60")

    @property
    def postal_code(self) -> str | None:
        """Return the postal code (61)."""
        return self.fields.get("61")

    @property
    def language(self) -> str | None:
        """Return the language of the language template (64-00), such as ``"vi"``."""
        return self.get("64.00")

    @property
    def name_alt(self) -> str | None:
        """Return the merchant name in that language, diacritics included (64-01)."""
        return self.get("64.01")

    @property
    def city_alt(self) -> str | None:
        """Return the merchant city in that language (64-02)."""
        return self.get("64.02")

    @property
    def crc(self) -> str:
        """Return the payload's CRC as four uppercase hex digits."""
        return self.fields["63"].upper()

    @property
    def additional(self) -> AdditionalData:
        """Return the additional data template (62)."""
        template = self.templates.get("62")
        if not template:
            return AdditionalData()
        named = {name: template.get(sub) for sub, name in ADDITIONAL_FIELDS.items()}
        return AdditionalData(**named)

    @property
    def merchant_accounts(self) -> list[MerchantAccount]:
        """Return the merchant account and unreserved templates, in payload order."""
        out = []
        for tag in self.fields:
            if tag in MERCHANT_ACCOUNT_IDS or tag in UNRESERVED_IDS:
                template = self.templates.get(tag)
                if template is not None:
                    guid = template.get("00")
                    owner = None if guid is None else scheme_of_guid(guid)
                    if tag == "38" and guid == NAPAS_GUID:
                        owner = "vietqr"
                    out.append(MerchantAccount(tag, guid, owner, template))
        return out

    def to_dict(self) -> dict[str, Any]:
        """Return the payload in chopay's JSON shape, with ``None`` where a field is absent."""
        bank = self.bank
        return {
            "valid": True,
            "scheme": self.scheme,
            "initiation": self.initiation,
            "bin": self.bin,
            "bank": None if bank is None else {"code": bank.code, "name": bank.short_name},
            "account": self.account,
            "service": self.service,
            "amount": self.amount,
            "currency": self.currency,
            "country": self.country,
            "mcc": self.mcc,
            "merchant_name": self.merchant_name,
            "merchant_city": self.merchant_city,
            "additional": self.additional.to_dict(),
            "crc": self.crc,
            "tags": [{"id": tag, "value": value} for tag, value in self.fields.items()],
            "issues": [issue.to_dict() for issue in self.issues],
        }


def decode(payload: str) -> Payload:
    """Parse and verify an EMVCo payload; raise a ``DecodeError`` if it is broken."""
    if not isinstance(payload, str):
        raise TypeError(f"payload must be str, not {type(payload).__name__}")
    if not payload:
        raise EmptyPayload("payload is empty", offset=0)
    fields = values(payload)
    if fields is None:
        # Not clean TLV: scan again, slowly, for the precise error and its offset.
        tags, _ = scan(payload)
        _raise_duplicate(tags)
    first = next(iter(fields))
    if first != "00":
        raise FormatIndicator(f"payload starts with element {first}; it must start with 00", offset=0)
    if fields["00"] != "01":
        raise FormatIndicator(f"payload format indicator is {fields['00']!r}; it must be '01'", offset=4)
    _verify_crc(payload, fields)

    templates: dict[str, dict[str, str]] = {}
    scheme = "emvco"
    # Set intersection runs in C, so only the few templates present cost Python time.
    for tag in _TEMPLATE_IDS.intersection(fields):
        sub = values(fields[tag])
        if sub is not None:
            templates[tag] = sub
        elif tag not in UNRESERVED_IDS:
            _raise_first_template(payload)
        # an unreserved id that is not TLV stays a primitive; checks report it
    napas = templates.get("38")
    if napas is not None and napas.get("00") == NAPAS_GUID:
        scheme = "vietqr"
        beneficiary = napas.get("01")
        if beneficiary is not None:
            parsed = values(beneficiary)
            if parsed is None:
                offset = next(o for t, _, o in scan(payload)[0] if t == "38")
                inner = next(o for t, _, o in scan(fields["38"], offset + 4)[0] if t == "01")
                _raise_template(beneficiary, inner + 4, "38.01")
            templates["38.01"] = parsed
    if scheme == "emvco":
        scheme = _scheme_from_guids(fields, templates)
    return Payload(payload, fields, templates, scheme)


def _raise_duplicate(tags: list[Element]) -> NoReturn:
    seen: set[str] = set()
    for tag, _, offset in tags:
        if tag in seen:
            raise DuplicateTag(f"element {tag} occurs more than once", offset=offset)
        seen.add(tag)
    raise AssertionError("no duplicate to report")


def _verify_crc(payload: str, fields: dict[str, str]) -> None:
    if next(reversed(fields)) != "63":
        if "63" in fields:
            crc_at = next(o for t, _, o in scan(payload)[0] if t == "63")
            raise CRCNotLast("CRC element 63 must be the last element", offset=crc_at)
        raise CRCMissing("payload has no CRC element 63", offset=len(payload))
    found = fields["63"]
    offset = len(payload) - len(found) - 4
    if len(found) != 4:
        raise CRCMalformed(f"CRC element must have length 04, not {len(found):02d}", offset=offset + 2)
    if not _HEX.issuperset(found):
        raise CRCMalformed(f"CRC {found!r} is not four hex digits", offset=offset + 4)
    try:
        data = payload[:-4].encode()
    except UnicodeEncodeError as exc:
        raise InvalidCharacter(
            f"character {payload[exc.start]!r} cannot be encoded", offset=exc.start
        ) from None
    expected = crc_hqx(data, 0xFFFF)
    if int(found, 16) != expected:
        raise CRCMismatch(
            f"CRC is {found} but the payload's data gives {expected:04X}",
            offset=offset + 4,
            expected=f"{expected:04X}",
            found=found,
        )


def _raise_first_template(payload: str) -> NoReturn:
    """Raise for the first strict template, in payload order, that is not clean TLV."""
    for tag, value, offset in scan(payload)[0]:
        if tag in STRICT_TEMPLATE_IDS and values(value) is None:
            _raise_template(value, offset + 4, tag)
    raise AssertionError("no malformed template to report")


def _raise_template(value: str, base: int, path: str) -> NoReturn:
    """Raise ``MalformedTemplate`` for a nested template that is not clean TLV."""
    try:
        sub, _ = scan(value, base)
        _raise_duplicate(sub)
    except DecodeError as exc:
        offset = base if exc.offset is None else exc.offset
        raise MalformedTemplate(
            f"template {path}: {exc.message}", offset=offset, tag=path, reason=exc.code
        ) from None


def _scheme_from_guids(fields: dict[str, str], templates: dict[str, dict[str, str]]) -> str:
    """Name the owner of the first known GUID among the account templates, else ``emvco``."""
    for tag in fields:
        if tag in MERCHANT_ACCOUNT_IDS or tag in UNRESERVED_IDS:
            guid = templates.get(tag, {}).get("00")
            owner = None if guid is None else scheme_of_guid(guid)
            if owner is not None:
                return owner
    return "emvco"

"""Build VietQR payloads that every banking app accepts.

Every argument is validated and a :class:`qr.errors.BuildError` names the first one at fault;
nothing is silently dropped or cut. Text meant for people is normalised the way the rules
require: merchant name and city are transliterated to ASCII (đ becomes d), the purpose memo
keeps letters, digits, space, ``.``, ``-`` and ``_``, and the Vietnamese name and city go to
the language template (64) in NFC. Text that is still too long after that is an error rather
than a truncation, because chopay matches incoming payments on the memo and references.

Elements are written in ascending id order, 00 first and the CRC (63) last.
"""

from __future__ import annotations

import re
from binascii import crc_hqx
from collections.abc import Iterable, Sequence
from typing import TypeAlias

from qr import banks
from qr.errors import BuildError
from qr.schemes import MAX_AMOUNT, NAPAS_GUID, SERVICES, VND
from qr.text import is_printable_ascii, nfc, sanitize_purpose, to_qr_ascii

__all__ = ["MAX_AMOUNT", "build_emvco", "build_vietqr"]

_ACCOUNT = re.compile(r"[A-Za-z0-9]{1,19}")
_CARD = re.compile(r"[0-9]{16,19}")
_PURPOSE_CLEAN = re.compile(r"[A-Za-z0-9._-]+(?: [A-Za-z0-9._-]+)*")
_INITIATION: dict[str | None, str] = {"static": "11", "dynamic": "12"}
_PREFIX = "000201"  # payload format indicator 00 = 01

Value: TypeAlias = "str | Sequence[tuple[str, Value]]"
"""An element value: a string, or a nested template given as ``(id, value)`` pairs."""


def _el(tag: str, value: str, field: str) -> str:
    if len(value) > 99:
        raise BuildError(field, f"encodes to {len(value)} characters; an element holds at most 99")
    return f"{tag}{len(value):02d}{value}"


def _with_crc(body: str) -> str:
    body += "6304"
    return f"{body}{crc_hqx(body.encode(), 0xFFFF):04X}"


def _label(field: str, value: str | None, limit: int = 25) -> str | None:
    """Check an identifier-like field: printable ASCII, 1 to ``limit`` characters."""
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise BuildError(field, "must be a non-empty string")
    if not is_printable_ascii(value):
        raise BuildError(field, "must be printable ASCII")
    if len(value) > limit:
        raise BuildError(field, f"is {len(value)} characters; the limit is {limit}")
    return value


def _ascii_text(field: str, value: str | None, limit: int) -> str | None:
    """Transliterate a human-readable field to ASCII and check its length."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise BuildError(field, "must be a string")
    text = to_qr_ascii(value)
    if not text:
        raise BuildError(field, "has no characters left after conversion to ASCII")
    if len(text) > limit:
        raise BuildError(field, f"is {len(text)} characters as ASCII ({text!r}); the limit is {limit}")
    return text


def _alt_text(field: str, value: str | None, limit: int) -> str | None:
    """Normalise a language-template field to NFC and check its length."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise BuildError(field, "must be a string")
    text = " ".join(nfc(value).split())
    if not text or not text.isprintable():
        raise BuildError(field, "must be printable text")
    if len(text) > limit:
        raise BuildError(field, f"is {len(text)} characters; the limit is {limit}")
    return text


def _purpose(value: str | None) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise BuildError("purpose", "must be a string")
    if len(value) <= 25 and value.isascii() and _PURPOSE_CLEAN.fullmatch(value):
        return value
    cleaned = sanitize_purpose(value, limit=1000)
    if not cleaned:
        raise BuildError("purpose", "has no letters or digits")
    if len(cleaned) > 25:
        raise BuildError(
            "purpose", f"is {len(cleaned)} characters after cleaning ({cleaned!r}); the limit is 25"
        )
    return cleaned


def _beneficiary(bin_: str, account: str, service: str) -> str:
    if not isinstance(bin_, str) or len(bin_) != 6 or not (bin_.isascii() and bin_.isdigit()):
        raise BuildError("bin", "must be six digits")
    bank = banks.by_bin(bin_)
    if bank is None:
        raise BuildError("bin", f"{bin_} is not in the bank directory")
    if not bank.receives_transfers:
        raise BuildError("bin", f"{bank.short_name} ({bin_}) does not receive VietQR transfers")
    if service not in SERVICES:
        raise BuildError("service", f"{service!r} is not one of {', '.join(SERVICES)}")
    if not isinstance(account, str):
        raise BuildError("account", "must be a string")
    if service == "QRIBFTTC":
        if not _CARD.fullmatch(account):
            raise BuildError("account", "a card number has 16 to 19 digits")
    elif not _ACCOUNT.fullmatch(account):
        raise BuildError("account", "must be 1 to 19 letters or digits")
    inner = f"0006{bin_}01{len(account):02d}{account}"
    return f"0010{NAPAS_GUID}01{len(inner):02d}{inner}02{len(service):02d}{service}"


def build_vietqr(
    *,
    bin: str,
    account: str,
    service: str = "QRIBFTTA",
    amount: int | None = None,
    purpose: str | None = None,
    bill_number: str | None = None,
    reference: str | None = None,
    store: str | None = None,
    terminal: str | None = None,
    merchant_name: str | None = None,
    merchant_city: str | None = None,
    mcc: str | None = None,
    initiation: str | None = None,
    name_vi: str | None = None,
    city_vi: str | None = None,
    postal_code: str | None = None,
    mobile: str | None = None,
    customer: str | None = None,
    loyalty: str | None = None,
) -> str:
    """Build a VietQR payload, validating every field; raise ``BuildError`` naming a bad one.

    ``initiation`` is ``"static"`` or ``"dynamic"``; by default a payload with an amount is
    dynamic and one without is static. A static payload never carries an amount. When only
    ``name_vi`` / ``city_vi`` are given, the ASCII name and city are derived from them.
    """
    if initiation not in (None, "static", "dynamic"):
        raise BuildError("initiation", "must be 'static' or 'dynamic'")
    point = _INITIATION.get(initiation)
    if amount is not None:
        if not isinstance(amount, int) or isinstance(amount, bool):
            raise BuildError("amount", "must be an integer number of dong")
        if not 1 <= amount <= MAX_AMOUNT:
            raise BuildError("amount", f"must be between 1 and {MAX_AMOUNT:,} dong")
        if point == "11":
            raise BuildError("initiation", "a static payload cannot carry an amount")
    if point is None:
        point = "11" if amount is None else "12"

    parts = [_PREFIX, "0102", point, _el("38", _beneficiary(bin, account, service), "account")]
    if mcc is not None:
        if not isinstance(mcc, str) or len(mcc) != 4 or not (mcc.isascii() and mcc.isdigit()):
            raise BuildError("mcc", "must be four digits")
        parts.append(f"5204{mcc}")
    parts.append(f"5303{VND}")
    if amount is not None:
        text = str(amount)
        parts.append(f"54{len(text):02d}{text}")
    parts.append("5802VN")

    alt_name = _alt_text("name_vi", name_vi, 25)
    alt_city = _alt_text("city_vi", city_vi, 15)
    name = _ascii_text("merchant_name", merchant_name if merchant_name is not None else alt_name, 25)
    city = _ascii_text("merchant_city", merchant_city if merchant_city is not None else alt_city, 15)
    if name is not None:
        parts.append(_el("59", name, "merchant_name"))
    if city is not None:
        parts.append(_el("60", city, "merchant_city"))
    postal = _label("postal_code", postal_code, 10)
    if postal is not None:
        parts.append(_el("61", postal, "postal_code"))

    extra = (
        ("01", _label("bill_number", bill_number)),
        ("02", _label("mobile", mobile)),
        ("03", _label("store", store)),
        ("04", _label("loyalty", loyalty)),
        ("05", _label("reference", reference)),
        ("06", _label("customer", customer)),
        ("07", _label("terminal", terminal)),
        ("08", _purpose(purpose)),
    )
    additional = "".join(f"{tag}{len(value):02d}{value}" for tag, value in extra if value is not None)
    if additional:
        parts.append(_el("62", additional, "additional_data"))
    if alt_name is not None or alt_city is not None:
        language = "0002vi"
        if alt_name is not None:
            language += f"01{len(alt_name):02d}{alt_name}"
        if alt_city is not None:
            language += f"02{len(alt_city):02d}{alt_city}"
        parts.append(_el("64", language, "name_vi"))
    return _with_crc("".join(parts))


def build_emvco(elements: Iterable[tuple[str, Value]]) -> str:
    """Encode ``(id, value)`` pairs, nested where a value is itself pairs, and append the CRC.

    This is the generic builder behind tests and tools for other schemes; it checks only
    structure (two-digit ids, values of at most 99 characters), not scheme rules.
    """
    return _with_crc(_encode(elements, top=True))


def _encode(elements: Iterable[tuple[str, Value]], *, top: bool = False) -> str:
    out = []
    for tag, value in elements:
        if len(tag) != 2 or not (tag.isascii() and tag.isdigit()):
            raise BuildError(tag, "an element id is two digits")
        if top and tag == "63":
            raise BuildError(tag, "the CRC is appended by the builder")
        text = value if isinstance(value, str) else _encode(value)
        out.append(_el(tag, text, tag))
    return "".join(out)

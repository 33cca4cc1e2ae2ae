"""Reading the values a statement holds: whole-dong amounts, dates, identifiers and text.

VND has no minor unit (ISO 4217 exponent 0), so an amount is an integer number of dong. Banks
still write ``150000,00`` (MT940) or ``18067000.00`` (SePay, camt.053); a fraction is accepted
only when it is all zeros, never rounded away. Every function here raises ``ValueError`` with
a message fit to show the user; the importers add the location.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Callable
from decimal import Decimal

from qr.schemes import MAX_AMOUNT

MAX_LINE_ID = 100
"""A line id is a leaf's ``bank_txn_id`` once reconciled: printable ASCII without spaces, 1..100."""
MAX_REFERENCE = 200
MAX_DESCRIPTION = 2000
MAX_BALANCE = 2**63 - 1
"""Largest balance magnitude: what a PostgreSQL ``bigint`` holds."""

_LINE_ID = re.compile(rf"[!-~]{{1,{MAX_LINE_ID}}}")
_DIGITS = re.compile(r"[0-9]+")
_TIME = re.compile(r"[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?")


def parse_amount(text: str, *, decimal: str = ".", thousands: str = "", limit: int = MAX_AMOUNT) -> int:
    """Return the signed whole-dong amount written in ``text``.

    Accepts an optional leading ``+`` or ``-``, digits grouped by ``thousands`` (when set)
    and a fraction after ``decimal`` that must be all zeros.
    """
    value = text.strip()
    if value.isascii() and value.isdigit():
        amount = int(value)
    elif value[:1] == "-" and value[1:].isascii() and value[1:].isdigit():
        amount = -int(value[1:])
    else:
        amount = _parse_amount_slow(value, decimal, thousands)
    if abs(amount) > limit:
        raise ValueError(f"amount {text.strip()} is beyond {limit:,} dong")
    return amount


def _parse_amount_slow(value: str, decimal: str, thousands: str) -> int:
    sign = 1
    body = value
    if body and body[0] in "+-":
        sign = -1 if body[0] == "-" else 1
        body = body[1:].lstrip()
    if thousands:
        body = body.replace(thousands, "")
    whole, sep, fraction = body.partition(decimal)
    if not _DIGITS.fullmatch(whole) or (sep and fraction and not _DIGITS.fullmatch(fraction)):
        raise ValueError(f"amount {value!r} is not a number of dong")
    if fraction.strip("0"):
        raise ValueError(f"amount {value} has a fraction of a dong; VND has no minor unit")
    return sign * int(whole)


def decimal_to_dong(value: Decimal, *, limit: int = MAX_AMOUNT) -> int:
    """Return a ``Decimal`` amount (as the MT940 parser gives it) as whole dong."""
    if not value.is_finite() or value != value.to_integral_value():
        raise ValueError(f"amount {value} has a fraction of a dong; VND has no minor unit")
    amount = int(value)
    if abs(amount) > limit:
        raise ValueError(f"amount {value} is beyond {limit:,} dong")
    return amount


def date_reader(fmt: str) -> Callable[[str], dt.date]:
    """Return a function reading dates written in ``strptime`` format ``fmt``, with a cache.

    Statements repeat a few hundred distinct dates over a million lines, so each distinct
    text is parsed once. ISO dates with a time after them (SePay's ``2023-05-05 19:59:48``)
    are read from their first ten characters, the time only checked for its shape, because
    the time of day plays no part in a statement line.
    """
    cache: dict[str, dt.date] = {}
    iso_prefix = fmt.startswith("%Y-%m-%d")
    time_part = fmt[len("%Y-%m-%d") :].strip() if iso_prefix else ""
    if iso_prefix and time_part not in ("", "%H:%M", "%H:%M:%S", "%H:%M:%S.%f"):
        iso_prefix = False

    def read(text: str) -> dt.date:
        value = text.strip()
        if iso_prefix:
            head, rest = value[:10], value[10:].strip()
            if (not time_part and rest) or (time_part and rest and not _TIME.fullmatch(rest)):
                raise ValueError(f"date {value!r} does not match the format {fmt}")
            value = head
        found = cache.get(value)
        if found is None:
            try:
                found = (
                    dt.date.fromisoformat(value)
                    if iso_prefix and len(value) == 10
                    else dt.datetime.strptime(value, fmt).date()  # noqa: DTZ007 (a calendar date, no instant)
                )
            except ValueError:
                raise ValueError(f"date {value!r} does not match the format {fmt}") from None
            cache[value] = found
        return found

    return read


def check_line_id(text: str) -> str:
    """Return ``text`` stripped if it can identify a statement line, else raise."""
    value = text.strip()
    if not _LINE_ID.fullmatch(value):
        if not value:
            raise ValueError("the line id is empty")
        raise ValueError(f"line id must be 1 to {MAX_LINE_ID} printable ASCII characters without spaces")
    return value


def clean_text(text: str, *, limit: int, what: str) -> str:
    """Return bank text in NFC with runs of whitespace made single spaces, or raise."""
    if "\x00" in text:
        raise ValueError(f"{what} contains a NUL character")
    value = " ".join(text.split())
    if not value.isascii():
        value = unicodedata.normalize("NFC", value)
    if len(value) > limit:
        raise ValueError(f"{what} is longer than {limit} characters")
    return value

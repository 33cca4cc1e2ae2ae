"""Vietnamese formats of money and time, for pages and anything else that shows them to people.

Money is integer đồng and reads the Vietnamese way whatever the page's language: dots group
the thousands and the symbol follows after a no-break space, ``vnd(50000) == "50.000\u00a0₫"``
(the space never lets the symbol wrap onto a line of its own). Times are shown in Vietnam's
time zone as ``02/12/2026 08:02``. Both are Jinja filters: ``{{ amount|vnd }}`` and
``{{ moment|vntime }}``.
"""

from __future__ import annotations

import datetime as dt

from babel.dates import format_datetime, get_timezone
from babel.numbers import format_decimal

LOCALE = "vi_VN"
TIME_ZONE = "Asia/Ho_Chi_Minh"
NBSP = "\u00a0"


def vnd(amount: int | None) -> str:
    """Return ``amount`` đồng as Vietnamese money text, e.g. ``50.000 ₫``; an em dash for None."""
    if amount is None:
        return "—"
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise TypeError(f"amounts are integer đồng, not {type(amount).__name__}")
    return f"{format_decimal(amount, locale=LOCALE)}{NBSP}₫"


def number(value: int | None) -> str:
    """Return a count with Vietnamese digit grouping (``1.234.567``)."""
    return "—" if value is None else format_decimal(value, locale=LOCALE)


def vntime(moment: dt.datetime | None, *, seconds: bool = False) -> str:
    """Return an aware datetime in Vietnam's time zone as ``dd/MM/yyyy HH:mm``."""
    if moment is None:
        return "—"
    if moment.tzinfo is None:
        raise ValueError("naive datetimes are not shown; pass an aware one")
    pattern = "dd/MM/yyyy HH:mm:ss" if seconds else "dd/MM/yyyy HH:mm"
    return format_datetime(moment, pattern, tzinfo=get_timezone(TIME_ZONE), locale=LOCALE)

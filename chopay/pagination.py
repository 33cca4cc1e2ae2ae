"""Cursor pagination: ``{"items": [...], "next_cursor": "..." | null}``.

Every list is ordered by a unique, increasing integer key (usually the row id), and a cursor
is that key of the last item shown, as a decimal string: pass ``next_cursor`` back as
``?cursor=`` for the next page. Clients should treat it as opaque; it is simple so that every
cursor the schema allows is one the service understands: a cursor past the end is an empty
page, not an error.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import marshmallow as ma

from chopay.db import MAX_ID

MAX_LIMIT = 500
CURSOR_PATTERN = r"^[0-9]{1,19}$"


def encode_cursor(value: int) -> str:
    """Return the cursor that continues after the key ``value``."""
    return str(value)


def decode_cursor(cursor: str | None) -> int | None:
    """Return the key a cursor continues after (None for the first page), at most MAX_ID."""
    if cursor is None:
        return None
    return min(int(cursor), MAX_ID)


def page(items: Sequence[Any], limit: int, key: str = "id") -> dict[str, Any]:
    """Return a page from ``items`` fetched with ``limit + 1`` rows."""
    more = len(items) > limit
    shown = list(items[:limit])
    next_cursor = encode_cursor(getattr(shown[-1], key)) if more and shown else None
    return {"items": shown, "next_cursor": next_cursor}


class PageArgs(ma.Schema):
    """Query arguments of a cursor-paginated list."""

    cursor = ma.fields.String(
        load_default=None,
        validate=ma.validate.Regexp(CURSOR_PATTERN, error="A cursor is the next_cursor of a previous page."),
        metadata={"description": "next_cursor of the previous page"},
    )
    limit = ma.fields.Integer(load_default=50, validate=ma.validate.Range(min=1, max=MAX_LIMIT))


def page_schema(item: type[ma.Schema], name: str) -> type[ma.Schema]:
    """Return the schema of a page of ``item``."""
    return ma.Schema.from_dict(
        {"items": ma.fields.List(ma.fields.Nested(item)), "next_cursor": ma.fields.String(allow_none=True)},
        name=name,
    )

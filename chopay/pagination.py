"""Cursor pagination: ``{"items": [...], "next_cursor": "..." | null}``.

A cursor is an opaque URL-safe string wrapping the last key seen. Clients pass it back as
``?cursor=``; they must not build one themselves.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from typing import Any

import marshmallow as ma

from chopay.db import MAX_ID
from chopay.errors import BadRequest

MAX_LIMIT = 500


def encode_cursor(value: Any) -> str:
    """Wrap ``value`` (JSON-serialisable) as an opaque cursor."""
    return base64.urlsafe_b64encode(json.dumps(value, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None, kind: type = int) -> Any:
    """Unwrap a cursor made by :func:`encode_cursor`; None stays None."""
    if cursor is None:
        return None
    try:
        value = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, RecursionError):
        value = None
    if (
        not isinstance(value, kind)
        or isinstance(value, bool)
        # An integer the database cannot bind is not a cursor this service issued.
        or (isinstance(value, int) and not -MAX_ID - 1 <= value <= MAX_ID)
    ):
        raise BadRequest("The cursor is not one this service issued.", code="cursor_invalid")
    return value


def page(items: Sequence[Any], limit: int, key: str = "id") -> dict[str, Any]:
    """Return a page from ``items`` fetched with ``limit + 1`` rows."""
    more = len(items) > limit
    shown = list(items[:limit])
    next_cursor = encode_cursor(getattr(shown[-1], key)) if more and shown else None
    return {"items": shown, "next_cursor": next_cursor}


class PageArgs(ma.Schema):
    """Query arguments of a cursor-paginated list."""

    cursor = ma.fields.String(load_default=None, metadata={"description": "next_cursor of the previous page"})
    limit = ma.fields.Integer(load_default=50, validate=ma.validate.Range(min=1, max=MAX_LIMIT))


def page_schema(item: type[ma.Schema], name: str) -> type[ma.Schema]:
    """Return the schema of a page of ``item``."""
    return ma.Schema.from_dict(
        {"items": ma.fields.List(ma.fields.Nested(item)), "next_cursor": ma.fields.String(allow_none=True)},
        name=name,
    )

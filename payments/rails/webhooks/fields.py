"""What the three notification formats share: the error, field checks and Vietnam time."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from qr.builder import MAX_AMOUNT  # the domain's amount bound: integer dong, EMVCo's 13 digits

__all__ = [
    "CODES",
    "HEX64",
    "MAX_AMOUNT",
    "VIETNAM",
    "WebhookError",
    "amount_field",
    "camel_case",
    "clean_text",
    "compact_json",
    "digits_field",
    "first_error",
    "format_vietnam_time",
    "integer_field",
    "json_object",
    "no_unknown_fields",
    "optional_text_field",
    "parse_vietnam_time",
    "text_field",
]

CODES = (
    "signature_missing",
    "signature_malformed",
    "signature_invalid",
    "signature_expired",
    "payload_malformed",
)
# Vietnam has kept UTC+7 without daylight saving since 1975; SePay and payOS write local time.
VIETNAM = dt.timezone(dt.timedelta(hours=7), "ICT")
VIETNAM_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
HEX64 = re.compile(r"^[0-9a-f]{64}$")
_UNSAFE_TEXT = re.compile("[\x00\ud800-\udfff]")  # NUL and lone surrogates


class WebhookError(Exception):
    """A notification that cannot be accepted; ``code`` is one of :data:`CODES`."""

    def __init__(self, code: str, message: str) -> None:
        if code not in CODES:
            raise ValueError(f"unknown webhook error code {code!r}")
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def format_vietnam_time(moment: dt.datetime) -> str:
    """Format an aware datetime as ``YYYY-MM-DD HH:MM:SS`` in Vietnam time."""
    if moment.tzinfo is None:
        raise ValueError("naive datetimes have no place on the wire; pass an aware datetime")
    return moment.astimezone(VIETNAM).strftime(VIETNAM_TIME_FORMAT)


def parse_vietnam_time(text: str, field: str = "time") -> dt.datetime:
    """Parse ``YYYY-MM-DD HH:MM:SS`` written in Vietnam time into an aware datetime."""
    try:
        naive = dt.datetime.strptime(text, VIETNAM_TIME_FORMAT)  # noqa: DTZ007 - zone added below
    except (TypeError, ValueError):
        raise WebhookError("payload_malformed", f"{field}: expected 'YYYY-MM-DD HH:MM:SS'") from None
    return naive.replace(tzinfo=VIETNAM)


def compact_json(obj: Any) -> bytes:
    """Serialise to compact UTF-8 JSON, as the notification bodies are sent."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def json_object(body: bytes) -> dict[str, Any]:
    """Parse a body that must be a JSON object."""
    try:
        obj = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise WebhookError("payload_malformed", "the body is not UTF-8 JSON") from None
    if not isinstance(obj, dict):
        raise WebhookError("payload_malformed", "the body must be a JSON object")
    return obj


def no_unknown_fields(obj: Mapping[str, Any], known: set[str]) -> None:
    """Refuse fields outside ``known``, naming the first."""
    unknown = sorted(set(obj) - known)
    if unknown:
        raise WebhookError("payload_malformed", f"{unknown[0]}: unknown field")


def clean_text(value: str, field: str) -> str:
    """Refuse NUL and lone surrogates, which no bank text contains."""
    if _UNSAFE_TEXT.search(value):
        raise WebhookError("payload_malformed", f"{field}: contains NUL or a lone surrogate")
    return value


def text_field(obj: Mapping[str, Any], field: str, *, limit: int = 500, allow_empty: bool = False) -> str:
    """Return a required string field, bounded and clean."""
    value = obj.get(field)
    if not isinstance(value, str):
        raise WebhookError("payload_malformed", f"{field}: must be a string")
    if not value and not allow_empty:
        raise WebhookError("payload_malformed", f"{field}: must not be empty")
    if len(value) > limit:
        raise WebhookError("payload_malformed", f"{field}: longer than {limit} characters")
    return clean_text(value, field)


def optional_text_field(obj: Mapping[str, Any], field: str) -> str | None:
    """Return a string field that may be null or absent."""
    if obj.get(field) is None:
        return None
    return text_field(obj, field, allow_empty=True)


def digits_field(obj: Mapping[str, Any], field: str, low: int, high: int) -> str:
    """Return a field of ``low``..``high`` ASCII digits."""
    value = text_field(obj, field)
    if not (low <= len(value) <= high and value.isascii() and value.isdigit()):
        raise WebhookError("payload_malformed", f"{field}: must be {low} digits")
    return value


def integer_field(obj: Mapping[str, Any], field: str) -> int:
    """Return an integer field (never a bool or a float)."""
    value = obj.get(field)
    # bool is an int in Python but never a count or an id on the wire.
    if type(value) is not int:
        raise WebhookError("payload_malformed", f"{field}: must be an integer")
    return value


def amount_field(obj: Mapping[str, Any], field: str) -> int:
    """Return an amount in whole dong within the domain bounds."""
    value = obj.get(field)
    if type(value) is not int:
        raise WebhookError("payload_malformed", f"{field}: must be an integer number of dong")
    if not 1 <= value <= MAX_AMOUNT:
        raise WebhookError("payload_malformed", f"{field}: must be 1..{MAX_AMOUNT} dong")
    return value


def camel_case(name: str) -> str:
    """Turn a snake_case field name into the camelCase the wire uses."""
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def first_error(exc: Exception) -> str:
    """Describe the first problem of a validation error, with its location."""
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        return f"{where}: {first['msg']}"
    return str(exc)

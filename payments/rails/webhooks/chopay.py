"""The chopay format: HMAC-SHA256 over ``timestamp.body``, as Stripe signs its webhooks."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from payments.rails.webhooks.fields import (
    HEX64,
    WebhookError,
    amount_field,
    compact_json,
    digits_field,
    json_object,
    no_unknown_fields,
    optional_text_field,
    text_field,
)

CONNECTOR_HEADER = "X-Chopay-Connector"
SIGNATURE_HEADER = "X-Chopay-Signature"
TOLERANCE = 300
SCHEME = "v1"
_TIMESTAMP = re.compile(r"^[0-9]{1,12}$")


@dataclass(frozen=True)
class SignatureHeader:
    """A parsed ``X-Chopay-Signature``: the timestamp and every ``v1`` signature."""

    timestamp: int
    signatures: tuple[str, ...]

    def __str__(self) -> str:
        return ",".join([f"t={self.timestamp}", *(f"{SCHEME}={s}" for s in self.signatures)])


def signed_payload(timestamp: int, body: bytes) -> bytes:
    """Return the bytes that are signed: the decimal timestamp, a dot, then the raw body."""
    return str(timestamp).encode("ascii") + b"." + body


def chopay_signature(secret: str, timestamp: int, body: bytes) -> str:
    """Return the hex HMAC-SHA256 of ``timestamp.body`` under ``secret``."""
    return hmac.new(secret.encode("utf-8"), signed_payload(timestamp, body), hashlib.sha256).hexdigest()


def sign_chopay(body: bytes, *secrets: str, timestamp: int | None = None) -> str:
    """Return an ``X-Chopay-Signature`` value signing ``body`` with each secret given."""
    if not secrets:
        raise ValueError("sign_chopay needs at least one secret")
    t = int(time.time()) if timestamp is None else timestamp
    return str(SignatureHeader(t, tuple(chopay_signature(s, t, body) for s in secrets)))


def chopay_headers(
    connector: str, body: bytes, *secrets: str, timestamp: int | None = None
) -> dict[str, str]:
    """Return the headers of a chopay-format notification from ``connector``."""
    return {
        "Content-Type": "application/json",
        CONNECTOR_HEADER: connector,
        SIGNATURE_HEADER: sign_chopay(body, *secrets, timestamp=timestamp),
    }


def parse_chopay_signature(header: str | None) -> SignatureHeader:
    """Parse an ``X-Chopay-Signature`` value; unknown schemes (``v0=``...) are ignored."""
    if header is None or not header.strip():
        raise WebhookError("signature_missing", f"the {SIGNATURE_HEADER} header is missing")
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            raise WebhookError("signature_malformed", f"{part.strip()!r} is not a key=value pair")
        if key == "t":
            if timestamp is not None:
                raise WebhookError("signature_malformed", "the timestamp t= is given twice")
            if not _TIMESTAMP.match(value):
                raise WebhookError("signature_malformed", f"the timestamp t={value!r} is not unix seconds")
            timestamp = int(value)
        elif key == SCHEME:
            if not HEX64.match(value):
                raise WebhookError("signature_malformed", "a v1 signature must be 64 lowercase hex digits")
            signatures.append(value)
    if timestamp is None:
        raise WebhookError("signature_malformed", "the header has no timestamp t=")
    if not signatures:
        raise WebhookError("signature_malformed", "the header has no v1= signature")
    return SignatureHeader(timestamp, tuple(signatures))


def verify_chopay(
    body: bytes,
    header: str | None,
    secrets: Iterable[str],
    *,
    tolerance: int = TOLERANCE,
    now: float | None = None,
) -> int:
    """Check a chopay-format signature against the live secrets; return its timestamp."""
    parsed = parse_chopay_signature(header)
    live = [s for s in secrets if s]
    if not live:
        raise WebhookError("signature_invalid", "the connector has no live secret")
    expected = [chopay_signature(s, parsed.timestamp, body) for s in live]
    # Compare every pair so the time taken does not tell which secret or entry was close.
    matched = False
    for candidate in parsed.signatures:
        for wanted in expected:
            matched |= hmac.compare_digest(candidate, wanted)
    if not matched:
        raise WebhookError("signature_invalid", "no signature matches the body with a live secret")
    current = time.time() if now is None else now
    if abs(current - parsed.timestamp) > tolerance:
        raise WebhookError(
            "signature_expired",
            f"signed at {parsed.timestamp}, {int(current - parsed.timestamp)} s from now; "
            f"the window is {tolerance} s",
        )
    return parsed.timestamp


@dataclass(frozen=True)
class ChopayNotification:
    """The body of a chopay-format notification: one credit to a merchant's account."""

    bank_txn_id: str
    bin: str
    account_number: str
    amount: int
    description: str
    occurred_at: dt.datetime
    payer_name: str | None = None

    @property
    def dedup_key(self) -> str:
        """Return the key that identifies this credit across redeliveries."""
        return self.bank_txn_id

    def to_json(self) -> bytes:
        """Serialise to the wire body (compact JSON, UTF-8)."""
        out: dict[str, Any] = asdict(self)
        out["occurred_at"] = self.occurred_at.isoformat()
        if self.payer_name is None:
            del out["payer_name"]
        return compact_json(out)


def parse_chopay(body: bytes) -> ChopayNotification:
    """Parse and check the body of a chopay-format notification."""
    obj = json_object(body)
    no_unknown_fields(obj, {f for f in ChopayNotification.__dataclass_fields__})
    occurred = text_field(obj, "occurred_at")
    try:
        occurred_at = dt.datetime.fromisoformat(occurred)
    except ValueError:
        raise WebhookError("payload_malformed", "occurred_at: not an ISO 8601 date-time") from None
    if occurred_at.tzinfo is None:
        raise WebhookError("payload_malformed", "occurred_at: needs a UTC offset (e.g. +07:00 or Z)")
    return ChopayNotification(
        bank_txn_id=text_field(obj, "bank_txn_id"),
        bin=digits_field(obj, "bin", 6, 6),
        account_number=text_field(obj, "account_number", limit=19),
        amount=amount_field(obj, "amount"),
        description=text_field(obj, "description", allow_empty=True),
        occurred_at=occurred_at,
        payer_name=optional_text_field(obj, "payer_name"),
    )

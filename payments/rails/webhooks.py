"""Sign and verify bank notifications in the three formats chopay accepts.

Pure: the standard library plus the official ``payos`` SDK (and what it needs). The bank
simulator signs with these functions and the notification intake verifies with them, so
both ends share one implementation of each format.

``chopay`` (``POST /v1/bank-notifications``)
    The body is :class:`ChopayNotification` as JSON. Headers ``X-Chopay-Connector: NAME`` and
    ``X-Chopay-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body">``, as Stripe
    signs its webhooks. The header may carry several ``v1`` entries (a sender rotating its
    secret signs with both); the receiver may hold several live secrets per connector.
    The timestamp must be within :data:`TOLERANCE` (300 s) of the receiver's clock, either
    way; the signature is checked first, so ``signature_expired`` is only ever said of a
    notification that was genuinely signed.

        >>> body = b'{"amount": 50000}'
        >>> header = sign_chopay(body, "whsec_demo", timestamp=1_700_000_000)
        >>> verify_chopay(body, header, ["whsec_old", "whsec_demo"], now=1_700_000_100)
        1700000000

``sepay`` (``POST /v1/bank-notifications/sepay/{connector}``)
    SePay's webhook JSON (:class:`SepayNotification`), authenticated by
    ``Authorization: Apikey <key>``. The receiver answers ``{"success": true}`` with 200 or
    201; SePay retries anything else. The dedup key is SePay's ``id``.

``payos`` (``POST /v1/bank-notifications/payos/{connector}``)
    payOS's webhook ``{code, desc, success, data, signature}`` where ``signature`` is the
    payOS checksum of ``data``: HMAC-SHA256 with the checksum key over the ``key=value&...``
    string of ``data``'s keys in sorted order. The body is validated with the SDK's own
    ``Webhook`` model and the checksum computed by the SDK's own ``CryptoProvider``, exactly
    as ``PayOS.webhooks.verify`` does; the comparison here is constant-time and accepts any
    of several live keys. The dedup key is ``data.reference``.

Every failure raises :class:`WebhookError`, whose ``code`` is one of :data:`CODES`:

=======================  ==============================================================
``signature_missing``    no signature header / ``Authorization`` / ``signature`` field
``signature_malformed``  the header is not in the format's syntax
``signature_invalid``    no live secret produces the signature (or the API key is wrong)
``signature_expired``    genuinely signed, but outside the tolerance window
``payload_malformed``    the body is not the format's JSON (field named in the message)
=======================  ==============================================================

A receiver answers the ``signature_*`` codes with 401 and ``payload_malformed`` with 400.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

from payos._crypto import CryptoProvider  # the SDK's own checksum; pinned to payos 1.x
from payos.types.webhooks import Webhook as PayosWebhookModel
from pydantic import ValidationError

__all__ = [
    "CODES",
    "CONNECTOR_HEADER",
    "SIGNATURE_HEADER",
    "TOLERANCE",
    "VIETNAM",
    "ChopayNotification",
    "PayosNotification",
    "SepayNotification",
    "SignatureHeader",
    "WebhookError",
    "chopay_headers",
    "chopay_signature",
    "format_vietnam_time",
    "parse_chopay",
    "parse_chopay_signature",
    "parse_sepay",
    "parse_vietnam_time",
    "payos_checksum",
    "sepay_headers",
    "sign_chopay",
    "sign_payos",
    "signed_payload",
    "verify_chopay",
    "verify_payos",
    "verify_sepay",
]

CONNECTOR_HEADER = "X-Chopay-Connector"
SIGNATURE_HEADER = "X-Chopay-Signature"
TOLERANCE = 300
SCHEME = "v1"
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
# Amount bounds of the domain (integer dong, the EMVCo 13-digit limit); 0 is refused too.
MAX_AMOUNT = 9_999_999_999_999

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_TIMESTAMP = re.compile(r"^[0-9]{1,12}$")
_UNSAFE_TEXT = re.compile("[\x00\ud800-\udfff]")  # NUL and lone surrogates
_CRYPTO = CryptoProvider()


class WebhookError(Exception):
    """A notification that cannot be accepted; ``code`` is one of :data:`CODES`."""

    def __init__(self, code: str, message: str) -> None:
        if code not in CODES:
            raise ValueError(f"unknown webhook error code {code!r}")
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


# ---------------------------------------------------------------------------------------
# chopay format


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
            if not _HEX64.match(value):
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
        return _dumps(out)


def parse_chopay(body: bytes) -> ChopayNotification:
    """Parse and check the body of a chopay-format notification."""
    obj = _object(body)
    _no_unknown(obj, {f for f in ChopayNotification.__dataclass_fields__})
    occurred = _text(obj, "occurred_at")
    try:
        occurred_at = dt.datetime.fromisoformat(occurred)
    except ValueError:
        raise WebhookError("payload_malformed", "occurred_at: not an ISO 8601 date-time") from None
    if occurred_at.tzinfo is None:
        raise WebhookError("payload_malformed", "occurred_at: needs a UTC offset (e.g. +07:00 or Z)")
    return ChopayNotification(
        bank_txn_id=_text(obj, "bank_txn_id"),
        bin=_digits(obj, "bin", 6, 6),
        account_number=_text(obj, "account_number", limit=19),
        amount=_amount(obj, "amount"),
        description=_text(obj, "description", allow_empty=True),
        occurred_at=occurred_at,
        payer_name=_optional_text(obj, "payer_name"),
    )


# ---------------------------------------------------------------------------------------
# SePay format


@dataclass(frozen=True)
class SepayNotification:
    """SePay's webhook body; ``transaction_date`` is aware (Vietnam time)."""

    id: int
    gateway: str
    transaction_date: dt.datetime
    account_number: str
    code: str | None
    content: str
    transfer_type: Literal["in", "out"]
    transfer_amount: int
    accumulated: int
    sub_account: str | None
    reference_code: str | None
    description: str

    @property
    def dedup_key(self) -> str:
        """Return SePay's transaction id, the key that identifies this notification."""
        return str(self.id)

    def to_dict(self) -> dict[str, Any]:
        """Return the body as SePay sends it (camelCase keys)."""
        return {
            "id": self.id,
            "gateway": self.gateway,
            "transactionDate": format_vietnam_time(self.transaction_date),
            "accountNumber": self.account_number,
            "code": self.code,
            "content": self.content,
            "transferType": self.transfer_type,
            "transferAmount": self.transfer_amount,
            "accumulated": self.accumulated,
            "subAccount": self.sub_account,
            "referenceCode": self.reference_code,
            "description": self.description,
        }

    def to_json(self) -> bytes:
        """Serialise to the wire body."""
        return _dumps(self.to_dict())


_SEPAY_KEYS = {
    "id",
    "gateway",
    "transactionDate",
    "accountNumber",
    "code",
    "content",
    "transferType",
    "transferAmount",
    "accumulated",
    "subAccount",
    "referenceCode",
    "description",
}


def sepay_headers(api_key: str) -> dict[str, str]:
    """Return the headers SePay sends to a webhook configured with ``api_key``."""
    return {"Content-Type": "application/json", "Authorization": f"Apikey {api_key}"}


def verify_sepay(authorization: str | None, keys: Iterable[str]) -> None:
    """Check an ``Authorization: Apikey <key>`` header against the connector's live keys."""
    if authorization is None or not authorization.strip():
        raise WebhookError("signature_missing", "the Authorization header is missing")
    scheme, _, presented = authorization.strip().partition(" ")
    if scheme.lower() != "apikey" or not presented.strip():
        raise WebhookError("signature_malformed", "Authorization must be 'Apikey <key>'")
    given = presented.strip().encode("utf-8")
    matched = False
    for key in keys:
        if key:
            matched |= hmac.compare_digest(given, key.encode("utf-8"))
    if not matched:
        raise WebhookError("signature_invalid", "the API key is not a live key of this connector")


def parse_sepay(body: bytes) -> SepayNotification:
    """Parse and check SePay's webhook JSON."""
    obj = _object(body)
    missing = sorted(_SEPAY_KEYS - {"description", "subAccount", "code", "referenceCode"} - set(obj))
    if missing:
        raise WebhookError("payload_malformed", f"{missing[0]}: is required")
    transfer_type = _text(obj, "transferType")
    if transfer_type not in ("in", "out"):
        raise WebhookError("payload_malformed", "transferType: must be 'in' or 'out'")
    accumulated = obj["accumulated"]
    if type(accumulated) is not int:
        raise WebhookError("payload_malformed", "accumulated: must be an integer number of dong")
    return SepayNotification(
        id=_int(obj, "id"),
        gateway=_text(obj, "gateway"),
        transaction_date=parse_vietnam_time(_text(obj, "transactionDate"), "transactionDate"),
        account_number=_text(obj, "accountNumber", limit=19),
        code=_optional_text(obj, "code"),
        content=_text(obj, "content", allow_empty=True),
        transfer_type="in" if transfer_type == "in" else "out",
        transfer_amount=_amount(obj, "transferAmount"),
        accumulated=accumulated,
        sub_account=_optional_text(obj, "subAccount"),
        reference_code=_optional_text(obj, "referenceCode"),
        description=_optional_text(obj, "description") or "",
    )


# ---------------------------------------------------------------------------------------
# payOS format


@dataclass(frozen=True)
class PayosNotification:
    """The verified ``data`` of a payOS webhook; ``transaction_date_time`` is aware."""

    order_code: int
    amount: int
    description: str
    account_number: str
    reference: str
    transaction_date_time: dt.datetime
    currency: str
    payment_link_id: str
    code: str
    desc: str
    counter_account_bank_id: str | None = None
    counter_account_bank_name: str | None = None
    counter_account_name: str | None = None
    counter_account_number: str | None = None
    virtual_account_name: str | None = None
    virtual_account_number: str | None = None

    @property
    def dedup_key(self) -> str:
        """Return the bank reference, the key that identifies this credit."""
        return self.reference

    def to_data(self) -> dict[str, Any]:
        """Return ``data`` as payOS sends it (camelCase keys, every key present)."""
        out: dict[str, Any] = {}
        for name, value in asdict(self).items():
            out[_camel(name)] = value
        out["transactionDateTime"] = format_vietnam_time(self.transaction_date_time)
        return out


def payos_checksum(data: Mapping[str, Any], checksum_key: str) -> str:
    """Return the payOS checksum of ``data``, computed by the SDK's own crypto provider."""
    signature = _CRYPTO.create_signature_from_object(dict(data), checksum_key)
    if signature is None:
        raise ValueError("payos_checksum needs a non-empty checksum key")
    return str(signature)


def sign_payos(
    notification: PayosNotification | Mapping[str, Any],
    checksum_key: str,
    *,
    code: str = "00",
    desc: str = "success",
) -> bytes:
    """Return the JSON body of a payOS webhook carrying ``notification``, signed."""
    data = notification.to_data() if isinstance(notification, PayosNotification) else dict(notification)
    body = {
        "code": code,
        "desc": desc,
        "success": code == "00",
        "data": data,
        "signature": payos_checksum(data, checksum_key),
    }
    return _dumps(body)


def verify_payos(body: bytes | str | Mapping[str, Any], checksum_keys: Iterable[str]) -> PayosNotification:
    """Verify a payOS webhook as the SDK does, against any live key; return its data."""
    payload: Any = body
    if isinstance(body, (bytes, str)):
        payload = _object(body.encode("utf-8") if isinstance(body, str) else body)
    if not isinstance(payload, Mapping):
        raise WebhookError("payload_malformed", "the body must be a JSON object")
    if not payload.get("signature"):
        raise WebhookError("signature_missing", "the body has no signature")
    if not isinstance(payload["signature"], str) or not _HEX64.match(payload["signature"]):
        raise WebhookError("signature_malformed", "signature must be 64 lowercase hex digits")
    try:
        webhook = PayosWebhookModel(**payload)
    except (ValidationError, TypeError) as exc:
        raise WebhookError("payload_malformed", f"not a payOS webhook: {_first_error(exc)}") from None
    data = dict(webhook.data.model_dump_camel_case())
    matched = False
    live = [k for k in checksum_keys if k]
    if not live:
        raise WebhookError("signature_invalid", "the connector has no live checksum key")
    try:
        for key in live:
            matched |= hmac.compare_digest(payos_checksum(data, key), webhook.signature)
    except UnicodeEncodeError:
        raise WebhookError("payload_malformed", "data contains a lone surrogate") from None
    if not matched:
        raise WebhookError("signature_invalid", "the signature does not match data with a live key")
    d = webhook.data
    if d.amount < 1 or d.amount > MAX_AMOUNT:
        raise WebhookError("payload_malformed", f"data.amount: must be 1..{MAX_AMOUNT}")
    return PayosNotification(
        order_code=d.order_code,
        amount=d.amount,
        description=d.description,
        account_number=d.account_number,
        reference=d.reference,
        transaction_date_time=parse_vietnam_time(d.transaction_date_time, "data.transactionDateTime"),
        currency=d.currency,
        payment_link_id=d.payment_link_id,
        code=d.code,
        desc=d.desc,
        counter_account_bank_id=d.counter_account_bank_id,
        counter_account_bank_name=d.counter_account_bank_name,
        counter_account_name=d.counter_account_name,
        counter_account_number=d.counter_account_number,
        virtual_account_name=d.virtual_account_name,
        virtual_account_number=d.virtual_account_number,
    )


# ---------------------------------------------------------------------------------------
# helpers


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


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _object(body: bytes) -> dict[str, Any]:
    try:
        obj = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise WebhookError("payload_malformed", "the body is not UTF-8 JSON") from None
    if not isinstance(obj, dict):
        raise WebhookError("payload_malformed", "the body must be a JSON object")
    return obj


def _no_unknown(obj: Mapping[str, Any], known: set[str]) -> None:
    unknown = sorted(set(obj) - known)
    if unknown:
        raise WebhookError("payload_malformed", f"{unknown[0]}: unknown field")


def _clean(value: str, field: str) -> str:
    if _UNSAFE_TEXT.search(value):
        raise WebhookError("payload_malformed", f"{field}: contains NUL or a lone surrogate")
    return value


def _text(obj: Mapping[str, Any], field: str, *, limit: int = 500, allow_empty: bool = False) -> str:
    value = obj.get(field)
    if not isinstance(value, str):
        raise WebhookError("payload_malformed", f"{field}: must be a string")
    if not value and not allow_empty:
        raise WebhookError("payload_malformed", f"{field}: must not be empty")
    if len(value) > limit:
        raise WebhookError("payload_malformed", f"{field}: longer than {limit} characters")
    return _clean(value, field)


def _optional_text(obj: Mapping[str, Any], field: str) -> str | None:
    if obj.get(field) is None:
        return None
    return _text(obj, field, allow_empty=True)


def _digits(obj: Mapping[str, Any], field: str, low: int, high: int) -> str:
    value = _text(obj, field)
    if not (low <= len(value) <= high and value.isascii() and value.isdigit()):
        raise WebhookError("payload_malformed", f"{field}: must be {low} digits")
    return value


def _int(obj: Mapping[str, Any], field: str) -> int:
    value = obj.get(field)
    # bool is an int in Python but never a count or an id on the wire.
    if type(value) is not int:
        raise WebhookError("payload_malformed", f"{field}: must be an integer")
    return value


def _amount(obj: Mapping[str, Any], field: str) -> int:
    value = obj.get(field)
    if type(value) is not int:
        raise WebhookError("payload_malformed", f"{field}: must be an integer number of dong")
    if not 1 <= value <= MAX_AMOUNT:
        raise WebhookError("payload_malformed", f"{field}: must be 1..{MAX_AMOUNT} dong")
    return value


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def _first_error(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        return f"{where}: {first['msg']}"
    return str(exc)

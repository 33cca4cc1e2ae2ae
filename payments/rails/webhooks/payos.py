"""The payOS format: the SDK's ``Webhook`` model and checksum, compared in constant time."""

from __future__ import annotations

import datetime as dt
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from payos._crypto import CryptoProvider  # the SDK's own checksum; pinned to payos 1.x
from payos.types.webhooks import Webhook as PayosWebhookModel
from pydantic import ValidationError

from payments.rails.webhooks.fields import (
    HEX64,
    MAX_AMOUNT,
    WebhookError,
    camel_case,
    compact_json,
    first_error,
    format_vietnam_time,
    json_object,
    parse_vietnam_time,
)

_CRYPTO = CryptoProvider()


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
            out[camel_case(name)] = value
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
    return compact_json(body)


def verify_payos(body: bytes | str | Mapping[str, Any], checksum_keys: Iterable[str]) -> PayosNotification:
    """Verify a payOS webhook as the SDK does, against any live key; return its data."""
    payload: Any = body
    if isinstance(body, (bytes, str)):
        payload = json_object(body.encode("utf-8") if isinstance(body, str) else body)
    if not isinstance(payload, Mapping):
        raise WebhookError("payload_malformed", "the body must be a JSON object")
    if not payload.get("signature"):
        raise WebhookError("signature_missing", "the body has no signature")
    if not isinstance(payload["signature"], str) or not HEX64.match(payload["signature"]):
        raise WebhookError("signature_malformed", "signature must be 64 lowercase hex digits")
    try:
        webhook = PayosWebhookModel(**payload)
    except (ValidationError, TypeError) as exc:
        raise WebhookError("payload_malformed", f"not a payOS webhook: {first_error(exc)}") from None
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

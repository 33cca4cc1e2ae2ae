"""The SePay format: SePay's webhook JSON, authenticated by ``Authorization: Apikey <key>``."""

from __future__ import annotations

import datetime as dt
import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from payments.rails.webhooks.fields import (
    WebhookError,
    amount_field,
    compact_json,
    format_vietnam_time,
    integer_field,
    json_object,
    optional_text_field,
    parse_vietnam_time,
    text_field,
)


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
        return compact_json(self.to_dict())


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
    obj = json_object(body)
    missing = sorted(_SEPAY_KEYS - {"description", "subAccount", "code", "referenceCode"} - set(obj))
    if missing:
        raise WebhookError("payload_malformed", f"{missing[0]}: is required")
    transfer_type = text_field(obj, "transferType")
    if transfer_type not in ("in", "out"):
        raise WebhookError("payload_malformed", "transferType: must be 'in' or 'out'")
    accumulated = obj["accumulated"]
    if type(accumulated) is not int:
        raise WebhookError("payload_malformed", "accumulated: must be an integer number of dong")
    return SepayNotification(
        id=integer_field(obj, "id"),
        gateway=text_field(obj, "gateway"),
        transaction_date=parse_vietnam_time(text_field(obj, "transactionDate"), "transactionDate"),
        account_number=text_field(obj, "accountNumber", limit=19),
        code=optional_text_field(obj, "code"),
        content=text_field(obj, "content", allow_empty=True),
        transfer_type="in" if transfer_type == "in" else "out",
        transfer_amount=amount_field(obj, "transferAmount"),
        accumulated=accumulated,
        sub_account=optional_text_field(obj, "subAccount"),
        reference_code=optional_text_field(obj, "referenceCode"),
        description=optional_text_field(obj, "description") or "",
    )

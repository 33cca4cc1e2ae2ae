"""A merchant's static QR, and the genuine-code check against what chopay issued.

**Static code.** The payload carries the merchant's BIN, account and ``QRIBFTTA``, its MCC,
QR name and city, the stall as store label (62-03) and the public id as reference label
(62-05). It is derived from the stored fields every time, so an edit is printed at once; its
ETag is a hash of the payload and the rendering options.

**Genuine-code check.** Scammers paste their own QR over a vendor's sticker. A payload is
*genuine* only when it is, character for character, the static code of an active merchant
or the payload of one of its open intents. Otherwise every reason that applies is listed, in
this order: a broken structure or CRC (with the decoder's code and offset; nothing else can
be said then), an unknown account, an account that differs from the one registered under the
payload's reference label, a name that differs, a suspended or closed merchant, an intent
that has expired, was paid or was cancelled, and finally any other alteration (an amount
written into a static code, say). The answer shows only a merchant's public details.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from merchants import domain
from merchants.domain import IntentStatus, MerchantStatus
from merchants.errors import MerchantGone
from merchants.models import Merchant, PaymentIntent
from merchants.services import intents, registry
from qr import DecodeError, Payload, decode

FORMATS = {"png": "image/png", "svg": "image/svg+xml", "txt": "text/plain"}


def static_payload(merchant: Merchant) -> str:
    """Return the static VietQR payload of ``merchant``."""
    return intents.payload_for(merchant)


def require_served(merchant: Merchant) -> None:
    """Raise 410 when a merchant's codes are no longer served (suspended or closed)."""
    if merchant.status != MerchantStatus.ACTIVE:
        raise MerchantGone(
            f"Merchant {merchant.public_id} is {merchant.status}: its QR code is no longer served.",
            code=f"merchant_{merchant.status}",
        )


def etag(payload: str, fmt: str, size: int) -> str:
    """Return the entity tag of ``payload`` rendered as ``fmt`` at ``size``."""
    return hashlib.sha256(f"{fmt}:{size}:{payload}".encode()).hexdigest()[:32]


@dataclass
class Verdict:
    """The answer of the genuine-code check."""

    genuine: bool = False
    merchant: dict[str, Any] | None = None
    intent: dict[str, Any] | None = None
    reasons: list[dict[str, Any]] = field(default_factory=list)

    def add(self, code: str, message: str, **extra: Any) -> None:
        """Record one reason why the code is not genuine."""
        self.reasons.append({"code": code, "message": message, **extra})


def verify(session: Session, payload: str) -> Verdict:
    """Tell whether ``payload`` is exactly a code chopay issued for an active merchant."""
    verdict = Verdict()
    try:
        decoded = decode(payload)
    except DecodeError as exc:
        verdict.add(
            "qr_broken",
            f"The code is damaged or forged: {exc.message}",
            error_code=exc.code,
            offset=exc.offset,
        )
        return verdict
    if not decoded.is_vietqr or not decoded.bin or not decoded.account:
        verdict.add("not_vietqr", "The code is not a VietQR transfer code, so it pays no registered vendor.")
        return verdict
    merchant = _identify(session, decoded, verdict)
    if merchant is None:
        return verdict
    verdict.merchant = registry.public_view(merchant)
    if decoded.merchant_name != merchant.qr_name:
        verdict.add(
            "name_mismatch",
            f"The name in the code ({decoded.merchant_name or 'none'}) differs from the vendor's "
            f"registered name ({merchant.qr_name}).",
        )
    if merchant.status != MerchantStatus.ACTIVE:
        verdict.add(f"merchant_{merchant.status}", f"The vendor {merchant.public_id} is {merchant.status}.")
    expected = _check_intent(session, decoded, merchant, verdict)
    if not verdict.reasons and payload != expected:
        verdict.add(
            "payload_altered",
            "The code differs from the one chopay issued for this vendor (amount, memo or other fields).",
        )
    verdict.genuine = not verdict.reasons
    return verdict


def _identify(session: Session, decoded: Payload, verdict: Verdict) -> Merchant | None:
    """Find the merchant a code claims to pay: by its reference label, else by its account."""
    bin_, account = decoded.bin or "", (decoded.account or "").upper()
    at_account = list(
        session.scalars(
            sa.select(Merchant)
            .where(Merchant.bin == bin_, Merchant.account_number == account)
            .order_by(Merchant.status != MerchantStatus.ACTIVE, Merchant.id.desc())
        )
    )
    label = decoded.additional.reference
    labelled = (
        session.scalar(sa.select(Merchant).where(Merchant.public_id == label))
        if label and domain.PUBLIC_ID_RE.fullmatch(label)
        else None
    )
    if not at_account:
        verdict.add("unknown_account", "No registered vendor is paid at the account in this code.")
    if labelled is not None and (labelled.bin, labelled.account_number) != (bin_, account):
        verdict.add(
            "account_mismatch",
            f"The code names vendor {labelled.public_id}, but pays another account than the one "
            "registered for that vendor.",
        )
    return labelled or (at_account[0] if at_account else None)


def _check_intent(session: Session, decoded: Payload, merchant: Merchant, verdict: Verdict) -> str:
    """Check a dynamic code's intent; return the payload chopay issued for what the code claims."""
    bill = decoded.additional.bill_number
    if not bill or not domain.is_reference(bill):
        return static_payload(merchant) if merchant.status == MerchantStatus.ACTIVE else ""
    intent = intents.find_by_reference(session, bill)
    if intent is None or intent.merchant_id != merchant.id:
        verdict.add("unknown_intent", f"The vendor issued no payment request {bill}.")
        return ""
    verdict.intent = intent_summary(intent)
    status = intents.effective_status(intent)
    if status == IntentStatus.EXPIRED:
        verdict.add("intent_expired", f"The payment request {bill} has expired.")
    elif status in domain.SETTLED_STATUSES:
        verdict.add("intent_paid", f"The payment request {bill} has already been paid.")
    elif status == IntentStatus.CANCELLED:
        verdict.add("intent_cancelled", f"The payment request {bill} was cancelled.")
    return intent.payload


def intent_summary(intent: PaymentIntent) -> dict[str, Any]:
    """Return what anyone holding an intent's code may see of it."""
    return {
        "reference": intent.reference,
        "amount": intent.amount,
        "status": intent.status,
        "expires_at": intent.expires_at.isoformat(),
    }

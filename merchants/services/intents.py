"""Payment intents: a dynamic VietQR for an exact amount, and what becomes of it.

An intent is created open, with a fresh reference (``CP`` + 8, unique by a constraint: a
collision is drawn again) and a payload carrying the amount, the reference as bill number
(62-01) and, as purpose (62-08), the reference followed by the sanitised memo, so that the
reference reaches the bank's transfer description. The merchant's public id is the reference
label (62-05), as on its static code.

The intake settles an intent with :func:`settle_intent` in its own unit of work, after
:func:`find_open_intent` has locked the row (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite
writers are serialised by ``BEGIN IMMEDIATE``). An intent past ``expires_at`` that the sweep
has not expired yet still matches: the buyer scanned it while it was shown.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from chopay.db import utcnow
from disbursement.domain import Problem
from merchants import domain
from merchants.domain import IntentStatus, MerchantStatus
from merchants.errors import IntentNotFound, IntentStateConflict, MerchantNotActive
from merchants.models import Merchant, PaymentIntent
from merchants.services.registry import invalid
from qr import BuildError, build_vietqr

_REFERENCE_ATTEMPTS = 8


def payload_for(
    merchant: Merchant, *, amount: int | None = None, reference: str | None = None, memo: str | None = None
) -> str:
    """Return the VietQR payload of ``merchant``: static without an amount, dynamic with one."""
    return build_vietqr(
        bin=merchant.bin,
        account=merchant.account_number,
        service="QRIBFTTA",
        amount=amount,
        mcc=merchant.mcc,
        merchant_name=merchant.qr_name,
        merchant_city=merchant.city,
        store=merchant.stall,
        reference=merchant.public_id,
        bill_number=reference,
        purpose=domain.intent_purpose(reference, memo) if reference else None,
    )


def expiry_of(
    now: dt.datetime, expires_in: int | None = None, expires_at: dt.datetime | None = None
) -> dt.datetime:
    """Return when an intent created at ``now`` expires; 422 for a past or too distant expiry."""
    if expires_at is not None:
        at = expires_at
    elif expires_in is not None:
        at = now + dt.timedelta(seconds=expires_in)
    else:
        return now + domain.DEFAULT_EXPIRY
    if at <= now:
        raise invalid(
            [
                Problem(
                    "expiry_in_past",
                    "The expiry must be in the future.",
                    "expires_at" if expires_at else "expires_in",
                )
            ]
        )
    if at - now > dt.timedelta(seconds=domain.MAX_EXPIRY_SECONDS):
        raise invalid(
            [
                Problem(
                    "expiry_too_far",
                    f"An intent expires within {domain.MAX_EXPIRY_SECONDS // 86400} days.",
                    "expires_at" if expires_at else "expires_in",
                )
            ]
        )
    return at


def create_intent(
    session: Session,
    merchant: Merchant,
    *,
    amount: int,
    memo: str | None = None,
    expires_in: int | None = None,
    expires_at: dt.datetime | None = None,
    by: int | None = None,
) -> PaymentIntent:
    """Open a payment intent for ``amount`` dong at an active merchant."""
    if merchant.status != MerchantStatus.ACTIVE:
        raise MerchantNotActive(
            f"Merchant {merchant.public_id} is {merchant.status}: it takes no new payments."
        )
    if not domain.MIN_AMOUNT <= amount <= domain.MAX_AMOUNT_DONG:
        raise invalid(
            [Problem("amount_out_of_range", f"The amount is 1 to {domain.MAX_AMOUNT_DONG:,} dong.", "amount")]
        )
    now = utcnow()
    expiry = expiry_of(now, expires_in, expires_at)
    memo = " ".join(memo.split()) if memo else None
    for _ in range(_REFERENCE_ATTEMPTS):
        reference = domain.new_reference()
        try:
            payload = payload_for(merchant, amount=amount, reference=reference, memo=memo)
        except BuildError as exc:  # the merchant's stored fields are checked; this is the memo
            raise invalid([Problem("memo_invalid", str(exc), "memo")]) from None
        intent = PaymentIntent(
            public_id=domain.new_intent_id(),
            merchant_id=merchant.id,
            reference=reference,
            amount=amount,
            memo=memo,
            payload=payload,
            status=IntentStatus.OPEN.value,
            expires_at=expiry,
            created_by=by,
            created_at=now,
        )
        try:
            with session.begin_nested():
                session.add(intent)
                session.flush()
        except IntegrityError:
            continue  # a reference or id drawn twice: draw again
        return intent
    raise RuntimeError("could not draw an unused intent reference")


def get_intent(session: Session, merchant: Merchant, intent_id: str, *, lock: bool = False) -> PaymentIntent:
    """Return the merchant's intent ``intent_id`` or raise IntentNotFound."""
    stmt = sa.select(PaymentIntent).where(
        PaymentIntent.public_id == intent_id, PaymentIntent.merchant_id == merchant.id
    )
    found = session.scalar(stmt.with_for_update() if lock else stmt)
    if found is None:
        raise IntentNotFound(f"Merchant {merchant.public_id} has no payment intent {intent_id}.")
    return found


def list_intents(
    session: Session,
    merchant: Merchant,
    *,
    status: str | None = None,
    after: int | None = None,
    limit: int = 50,
) -> list[PaymentIntent]:
    """Return up to ``limit + 1`` of the merchant's intents by id after ``after``."""
    stmt = (
        sa.select(PaymentIntent)
        .where(PaymentIntent.merchant_id == merchant.id)
        .order_by(PaymentIntent.id)
        .limit(limit + 1)
    )
    if status:
        stmt = stmt.where(PaymentIntent.status == status)
    if after is not None:
        stmt = stmt.where(PaymentIntent.id > after)
    return list(session.scalars(stmt))


def cancel_intent(session: Session, merchant: Merchant, intent_id: str) -> PaymentIntent:
    """Cancel an open intent; 409 once it is paid, expired or cancelled."""
    intent = get_intent(session, merchant, intent_id, lock=True)
    if intent.status != IntentStatus.OPEN:
        raise IntentStateConflict(
            f"Intent {intent_id} is {intent.status}; only an open intent can be cancelled."
        )
    intent.status = IntentStatus.CANCELLED.value
    intent.settled_at = utcnow()
    session.flush()
    return intent


def effective_status(intent: PaymentIntent, now: dt.datetime | None = None) -> str:
    """Return an intent's status as a buyer sees it: an open intent past its expiry is expired."""
    if intent.status == IntentStatus.OPEN and intent.expires_at <= (now or utcnow()):
        return IntentStatus.EXPIRED.value
    return intent.status


def find_open_intent(session: Session, reference: str, *, lock: bool = True) -> PaymentIntent | None:
    """Return the open intent with ``reference`` (upper-cased), locked for update by default."""
    stmt = sa.select(PaymentIntent).where(
        PaymentIntent.reference == reference.upper(), PaymentIntent.status == IntentStatus.OPEN
    )
    return session.scalar(stmt.with_for_update() if lock else stmt)


def find_by_reference(session: Session, reference: str) -> PaymentIntent | None:
    """Return the intent with ``reference`` whatever its status, or None."""
    return session.scalar(sa.select(PaymentIntent).where(PaymentIntent.reference == reference.upper()))


def settle_intent(session: Session, intent: PaymentIntent, amount: int, at: dt.datetime) -> str:
    """Record that ``amount`` dong came in for ``intent`` at ``at``; return the new status.

    ``paid`` when the amount is the intent's, ``underpaid`` or ``overpaid`` otherwise. Only an
    open intent is settled (409 ``intent_not_open`` otherwise): lock it first with
    :func:`find_open_intent`.
    """
    if intent.status != IntentStatus.OPEN:
        raise IntentStateConflict(
            f"Intent {intent.public_id} is {intent.status}; it cannot be settled again."
        )
    status = domain.settlement_status(intent.amount, amount)
    intent.status = status.value
    intent.paid_amount = amount
    intent.settled_at = at
    session.flush()
    return status.value


def expire_due(session: Session, now: dt.datetime | None = None, limit: int = 1000) -> int:
    """Expire up to ``limit`` open intents past their expiry; return how many."""
    now = now or utcnow()
    ids = list(
        session.scalars(
            sa.select(PaymentIntent.id)
            .where(PaymentIntent.status == IntentStatus.OPEN, PaymentIntent.expires_at <= now)
            .order_by(PaymentIntent.expires_at)
            .limit(limit)
        )
    )
    if not ids:
        return 0
    result = session.execute(
        sa.update(PaymentIntent)
        .where(PaymentIntent.id.in_(ids), PaymentIntent.status == IntentStatus.OPEN)
        .values(status=IntentStatus.EXPIRED.value, settled_at=now)
        .execution_options(synchronize_session=False)
    )
    session.flush()
    return int(result.rowcount or 0)  # type: ignore[attr-defined]

"""Record a verified notification exactly once; match it; post it; assign what did not match.

Exactly once rests on the database: the notification is claimed first with ``INSERT ... ON
CONFLICT (connector, dedup_key) DO NOTHING``. Of fifty concurrent deliveries of one
notification, one inserts; on PostgreSQL the others wait on that row's unique-index entry
until its transaction ends, then find it committed (SQLite writers are serialised by ``BEGIN
IMMEDIATE``), so they answer with the original payment. A delivery whose content differs from
the stored one under the same id raises :class:`ReusedId`; the caller rolls back and keeps the
conflicting body with :func:`keep_conflict` in a unit of work of its own.

Matching, in order:

1. a reference (:mod:`.matching`) in the description, or SePay's ``code``, that names an open
   intent: the payment settles it (``paid``, or ``underpaid`` / ``overpaid``, flagged);
2. otherwise the active merchant owning (BIN, account): a static-QR payment;
3. otherwise the notification is kept ``unassigned`` until an officer assigns it.

A SePay debit (``transferType: out``) is kept as ``ignored``. The payment row, its ledger
transaction, the intent's settlement and the notification's status are written in the
caller's one transaction; the live event is published only once it has committed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from chopay import db
from chopay.crypto import DataKeys
from chopay.db import utcnow
from chopay.errors import Conflict, NotFound
from merchants.intake import ledger, matching
from merchants.intake.formats import Incoming
from merchants.intake.models import (
    ACCOUNT_INDEX,
    CONFLICT_BODY,
    NOTIFICATION_ACCOUNT,
    NOTIFICATION_BODY,
    NOTIFICATION_PAYER,
    BankNotification,
    NotificationConflict,
    Payment,
)
from merchants.models import Merchant, PaymentIntent
from merchants.services import intents, registry

RECORDED = "recorded"
UNASSIGNED = "unassigned"
IGNORED = "ignored"
FLAGS = ("underpaid", "overpaid")


@dataclass(frozen=True)
class PaymentEvent:
    """What a merchant's live stream is told of a payment: ``payment.received``."""

    merchant_id: int
    payment_id: int
    amount: int
    reference: str | None
    occurred_at: dt.datetime
    flag: str | None

    def data(self) -> dict[str, Any]:
        """Return the event's JSON data."""
        return {
            "payment": self.payment_id,
            "amount": self.amount,
            "reference": self.reference,
            "occurred_at": self.occurred_at.isoformat(),
            "flag": self.flag,
        }


Publish = Callable[[PaymentEvent], None]


@dataclass(frozen=True)
class Outcome:
    """What became of one delivery."""

    notification: BankNotification
    payment: Payment | None
    duplicate: bool
    merchant: str | None = None  # the payment's merchant's public id, when known without a query

    @property
    def status(self) -> str:
        """Return the notification's status: recorded, unassigned or ignored."""
        return self.notification.status


class ReusedId(Conflict):
    """The (connector, bank transaction id) was recorded with different content."""

    code = "notification_conflict"

    def __init__(self, notification_id: int) -> None:
        super().__init__(
            "This connector already reported a different notification under the same bank transaction "
            "id; it is kept for review.",
            notification=notification_id,
        )
        self.notification_id = notification_id


_NOTIFICATIONS = cast(sa.Table, BankNotification.__table__)
_PAYMENTS = cast(sa.Table, Payment.__table__)
_CLAIM: dict[str, Any] = {}


def _insert(session: Session) -> Any:
    return (postgresql if session.get_bind().dialect.name == "postgresql" else sqlite).insert


def _claim_statement(session: Session) -> Any:
    """Return the claiming insert, built once per dialect (statement building costs more than running it)."""
    dialect = session.get_bind().dialect.name
    found = _CLAIM.get(dialect)
    if found is None:
        found = (
            _insert(session)(_NOTIFICATIONS)
            .on_conflict_do_nothing(index_elements=["connector", "dedup_key"])
            .returning(_NOTIFICATIONS.c.id)
        )
        _CLAIM[dialect] = found
    return found


_INSERT_PAYMENT = sa.insert(_PAYMENTS).returning(_PAYMENTS.c.id)


def _account_index(keys: DataKeys, bin_: str | None, account: str) -> str:
    return keys.blind_index(f"{bin_ or ''}:{account}", ACCOUNT_INDEX)


def record(
    session: Session, keys: DataKeys, incoming: Incoming, body: bytes, publish: Publish | None = None
) -> Outcome:
    """Record ``incoming`` once, match it and post it; a redelivery returns the first outcome."""
    content = incoming.content_sha256
    values = {
        "connector": incoming.connector,
        "format": incoming.format,
        "dedup_key": incoming.dedup_key,
        "content_sha256": content,
        "status": RECORDED if incoming.direction == "in" else IGNORED,
        "direction": incoming.direction,
        "bank_txn_id": incoming.bank_txn_id,
        "bin": incoming.bin,
        "account_number": keys.encrypt(incoming.account_number, NOTIFICATION_ACCOUNT.context),
        "account_index": _account_index(keys, incoming.bin, incoming.account_number),
        "account_last4": incoming.account_number[-4:],
        "amount": incoming.amount,
        "description": incoming.description[:500],
        "code": incoming.code[:100] if incoming.code else None,
        "payer_name": (
            keys.encrypt(incoming.payer_name, NOTIFICATION_PAYER.context) if incoming.payer_name else None
        ),
        "body": keys.encrypt(body.decode("utf-8", "replace"), NOTIFICATION_BODY.context),
        "occurred_at": incoming.occurred_at.astimezone(dt.UTC),
        "received_at": utcnow(),
    }
    claimed = session.execute(_claim_statement(session), values).scalar_one_or_none()
    if claimed is None:
        return _replay(session, incoming, content)
    # The row as inserted, without reading it back: the caller only reads its fields.
    notification = BankNotification(id=claimed, **values)
    if incoming.direction != "in":
        return Outcome(notification, None, duplicate=False)
    payment, merchant = _match(session, notification, incoming, publish)
    if payment is None:
        notification.status = UNASSIGNED
        session.execute(
            sa.update(_NOTIFICATIONS).where(_NOTIFICATIONS.c.id == claimed).values(status=UNASSIGNED)
        )
    return Outcome(notification, payment, duplicate=False, merchant=merchant)


def _replay(session: Session, incoming: Incoming, content: str) -> Outcome:
    existing = session.scalar(
        sa.select(BankNotification).where(
            BankNotification.connector == incoming.connector,
            BankNotification.dedup_key == incoming.dedup_key,
        )
    )
    assert existing is not None  # the insert stood back only because this row is committed
    if existing.content_sha256 != content:
        raise ReusedId(existing.id)
    payment = session.scalar(sa.select(Payment).where(Payment.notification_id == existing.id))
    return Outcome(existing, payment, duplicate=True)


def keep_conflict(session: Session, keys: DataKeys, notification_id: int, content: str, body: bytes) -> None:
    """Keep a conflicting delivery for review (once per distinct content)."""
    table = NotificationConflict.__table__
    session.execute(
        _insert(session)(table)
        .values(
            notification_id=notification_id,
            content_sha256=content,
            body=keys.encrypt(body.decode("utf-8", "replace"), CONFLICT_BODY.context),
            received_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=["notification_id", "content_sha256"])
    )


def _match(
    session: Session, notification: BankNotification, incoming: Incoming, publish: Publish | None
) -> tuple[Payment | None, str | None]:
    for reference in matching.candidates(incoming.description, incoming.code):
        intent = intents.find_open_intent(session, reference, lock=True)
        if intent is not None:
            merchant = session.get(Merchant, intent.merchant_id)
            assert merchant is not None
            paid = _pay(session, notification, incoming, merchant, intent, "intent", publish)
            return paid, merchant.public_id
    if incoming.bin is None:
        return None, None
    merchant = registry.find_active_by_account(session, incoming.bin, incoming.account_number)
    if merchant is None:
        return None, None
    return _pay(session, notification, incoming, merchant, None, "static", publish), merchant.public_id


def _pay(
    session: Session,
    notification: BankNotification,
    incoming: Incoming | None,
    merchant: Merchant,
    intent: PaymentIntent | None,
    kind: str,
    publish: Publish | None,
) -> Payment:
    occurred_at = notification.occurred_at
    flag: str | None = None
    if intent is not None:
        settled = intents.settle_intent(session, intent, notification.amount, occurred_at)
        flag = settled if settled in FLAGS else None
    posted = ledger.post_payment(
        session,
        merchant=merchant.public_id,
        connector=notification.connector,
        dedup_key=notification.dedup_key,
        bank_txn_id=notification.bank_txn_id,
        amount=notification.amount,
        occurred_at=occurred_at,
        reference=intent.reference if intent is not None else None,
        connector_txn_id=incoming.connector_txn_id if incoming is not None else None,
    )
    row = {
        "notification_id": notification.id,
        "merchant_id": merchant.id,
        "intent_id": intent.id if intent is not None else None,
        "connector": notification.connector,
        "bank_txn_id": notification.bank_txn_id,
        "amount": notification.amount,
        "reference": intent.reference if intent is not None else None,
        "kind": kind,
        "flag": flag,
        "occurred_at": occurred_at,
        "recorded_at": utcnow(),
        "ledger_tx_id": posted.id,
    }
    payment_id = session.execute(_INSERT_PAYMENT, row).scalar_one()
    payment = Payment(id=payment_id, **row)  # as inserted; not read back
    if publish is not None:
        event = PaymentEvent(merchant.id, payment.id, payment.amount, payment.reference, occurred_at, flag)
        db.after_commit(session, lambda: publish(event))
    return payment


def get_notification(session: Session, notification_id: int, *, lock: bool = False) -> BankNotification:
    """Return one notification or raise NotFound."""
    stmt = sa.select(BankNotification).where(BankNotification.id == notification_id)
    found = session.scalar(stmt.with_for_update() if lock else stmt)
    if found is None:
        raise NotFound(f"No bank notification {notification_id}.", code="notification_not_found")
    return found


def payment_of(session: Session, notification_id: int) -> Payment | None:
    """Return the payment recorded for a notification, if any."""
    return session.scalar(sa.select(Payment).where(Payment.notification_id == notification_id))


def assign(
    session: Session,
    notification_id: int,
    merchant: Merchant,
    *,
    reference: str | None = None,
    by: int,
    publish: Publish | None = None,
) -> Payment:
    """Record an unassigned notification as a payment to ``merchant`` (settling an open intent)."""
    notification = get_notification(session, notification_id, lock=True)
    if notification.status != UNASSIGNED:
        raise Conflict(
            f"Bank notification {notification_id} is {notification.status}, not unassigned.",
            code="notification_not_unassigned",
        )
    intent: PaymentIntent | None = None
    if reference is not None:
        intent = intents.find_open_intent(session, reference, lock=True)
        if intent is None or intent.merchant_id != merchant.id:
            raise Conflict(
                f"{reference} is not an open intent of merchant {merchant.public_id}.",
                code="intent_not_open",
            )
    notification.status = RECORDED
    notification.assigned_by = by
    notification.assigned_at = utcnow()
    return _pay(session, notification, None, merchant, intent, "assigned", publish)


def list_notifications(
    session: Session, *, status: str | None, after: int | None, limit: int
) -> list[BankNotification]:
    """Return notifications ordered by id after the cursor, optionally of one status."""
    stmt = sa.select(BankNotification).order_by(BankNotification.id).limit(limit)
    if status is not None:
        stmt = stmt.where(BankNotification.status == status)
    if after is not None:
        stmt = stmt.where(BankNotification.id > after)
    return list(session.scalars(stmt))


def list_conflicts(session: Session, *, after: int | None, limit: int) -> list[NotificationConflict]:
    """Return conflicting deliveries kept for review, oldest first."""
    stmt = sa.select(NotificationConflict).order_by(NotificationConflict.id).limit(limit)
    if after is not None:
        stmt = stmt.where(NotificationConflict.id > after)
    return list(session.scalars(stmt))

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

A SePay debit (``transferType: out``) is kept as ``ignored``, and so is a payment its sender
reports as not made (a payOS webhook whose code is not "00"), with that report in
``sender_status``: neither is a payment, so neither is matched, posted or announced. The
payment row, its ledger transaction, the intent's settlement and the notification's status
are written in the caller's one transaction; the live event is published only once it has committed.

The common case, a credit to a registered account, is the hot path of the intake, so on
PostgreSQL it costs three statements besides the ledger's: the claim, which also returns the
active merchant owning the account (one round trip), and the payment row, both sent straight
to the driver with their SQL built once; nothing is read back and no ORM object is made.
:func:`record_many` records concurrent deliveries together in one transaction (the intake's
group commit, :mod:`merchants.intake.group`), with the same outcome for each as :func:`record`
would give it: the statements of a group's static-QR payments are the same five whatever its
size.
"""

from __future__ import annotations

import datetime as dt
import json
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
from merchants.domain import MerchantStatus
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
from merchants.services import intents
from payments.ledger.domain import TransactionSpec

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


@dataclass(frozen=True, slots=True)
class PaymentRecord:
    """A payment row as it was inserted (the fields of :class:`Payment`), not read back."""

    id: int
    notification_id: int
    merchant_id: int
    intent_id: int | None
    connector: str
    bank_txn_id: str
    amount: int
    reference: str | None
    kind: str
    flag: str | None
    occurred_at: dt.datetime
    recorded_at: dt.datetime
    ledger_tx_id: int


@dataclass(frozen=True)
class Outcome:
    """What became of one delivery."""

    notification_id: int
    status: str  # the notification's: recorded, unassigned or ignored
    payment: Payment | PaymentRecord | None
    duplicate: bool
    merchant: str | None = None  # the payment's merchant's public id, when known without a query


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
_MERCHANTS = cast(sa.Table, Merchant.__table__)
_CLAIM: dict[str, Any] = {}
_CLAIM_COLUMNS = (
    "connector",
    "format",
    "dedup_key",
    "content_sha256",
    "status",
    "direction",
    "bank_txn_id",
    "bin",
    "account_number",
    "account_index",
    "account_last4",
    "amount",
    "description",
    "code",
    "sender_status",
    "payer_name",
    "body",
    "occurred_at",
    "received_at",
)
_PAYMENT_COLUMNS = (
    "notification_id",
    "merchant_id",
    "intent_id",
    "connector",
    "bank_txn_id",
    "amount",
    "reference",
    "kind",
    "flag",
    "occurred_at",
    "recorded_at",
    "ledger_tx_id",
)


def _placeholders(columns: tuple[str, ...]) -> str:
    return ", ".join(f"%({c})s" for c in columns)


# PostgreSQL, through the driver: the claim returns the new row's id and the active merchant
# owning the account (no row at all when the notification was claimed before).
_CLAIM_PG = f"""
WITH claimed AS (
    INSERT INTO bank_notifications ({", ".join(_CLAIM_COLUMNS)})
    VALUES ({_placeholders(_CLAIM_COLUMNS)})
    ON CONFLICT (connector, dedup_key) DO NOTHING
    RETURNING id
)
SELECT claimed.id, m.id, m.public_id
FROM claimed
LEFT JOIN merchants m
    ON m.bin = %(merchant_bin)s AND m.account_number = %(merchant_account)s AND m.status = %(active)s
LIMIT 1
"""
_INSERT_PAYMENT_PG = f"""
INSERT INTO payments ({", ".join(_PAYMENT_COLUMNS)}) VALUES ({_placeholders(_PAYMENT_COLUMNS)}) RETURNING id
"""
_ACTIVE_MERCHANT = (
    sa.select(_MERCHANTS.c.id, _MERCHANTS.c.public_id)
    .where(
        _MERCHANTS.c.bin == sa.bindparam("bin"),
        _MERCHANTS.c.account_number == sa.bindparam("account"),
        _MERCHANTS.c.status == MerchantStatus.ACTIVE.value,
    )
    .limit(1)
)
_UNKNOWN: Any = object()
"""The merchant owning the account, not looked up yet."""


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


def _postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _driver(session: Session) -> Any:
    """Return the driver connection under the session's transaction (psycopg)."""
    return session.connection().connection.driver_connection


def _active_merchant(session: Session, bin_: str | None, account: str) -> tuple[int, str] | None:
    """Return (id, public id) of the active merchant paid at (``bin_``, ``account``), or None."""
    if bin_ is None:
        return None
    row = session.connection().execute(_ACTIVE_MERCHANT, {"bin": bin_, "account": account.upper()}).first()
    return (row[0], row[1]) if row is not None else None


def _claim(
    session: Session, driver: Any, values: dict[str, Any], bin_: str | None, account: str
) -> tuple[int | None, Any]:
    """Insert the notification unless its key is taken; return its id (or None) and the merchant.

    On PostgreSQL (``driver`` given) the merchant owning (``bin_``, ``account``) comes with the
    claim, as (id, public id) or None; elsewhere it is :data:`_UNKNOWN`, looked up when needed.
    """
    if driver is None:
        claimed = session.connection().execute(_claim_statement(session), values).scalar_one_or_none()
        return claimed, _UNKNOWN
    params = {
        **values,
        "merchant_bin": bin_,
        "merchant_account": account.upper(),
        "active": MerchantStatus.ACTIVE.value,
    }
    row = driver.execute(_CLAIM_PG, params).fetchone()
    if row is None:
        return None, None
    return row[0], ((row[1], row[2]) if row[1] is not None else None)


def _values(keys: DataKeys, incoming: Incoming, body: bytes) -> dict[str, Any]:
    """Return the notification row of ``incoming`` (the columns of :data:`_CLAIM_COLUMNS`)."""
    return {
        "connector": incoming.connector,
        "format": incoming.format,
        "dedup_key": incoming.dedup_key,
        "content_sha256": incoming.content_sha256,
        "status": RECORDED if incoming.direction == "in" and not incoming.failed else IGNORED,
        "direction": incoming.direction,
        "bank_txn_id": incoming.bank_txn_id,
        "bin": incoming.bin,
        "account_number": keys.encrypt(incoming.account_number, NOTIFICATION_ACCOUNT.context),
        "account_index": _account_index(keys, incoming.bin, incoming.account_number),
        "account_last4": incoming.account_number[-4:],
        "amount": incoming.amount,
        "description": incoming.description[:500],
        "code": incoming.code[:100] if incoming.code else None,
        "sender_status": incoming.sender_status,
        "payer_name": (
            keys.encrypt(incoming.payer_name, NOTIFICATION_PAYER.context) if incoming.payer_name else None
        ),
        "body": keys.encrypt(body.decode("utf-8", "replace"), NOTIFICATION_BODY.context),
        "occurred_at": incoming.occurred_at.astimezone(dt.UTC),
        "received_at": utcnow(),
    }


def record(
    session: Session, keys: DataKeys, incoming: Incoming, body: bytes, publish: Publish | None = None
) -> Outcome:
    """Record ``incoming`` once, match it and post it; a redelivery returns the first outcome."""
    content = incoming.content_sha256
    values = _values(keys, incoming, body)
    driver = _driver(session) if _postgres(session) else None
    claimed, owner = _claim(session, driver, values, incoming.bin, incoming.account_number)
    if claimed is None:
        return _replay(session, incoming, content)
    if values["status"] == IGNORED:
        return Outcome(claimed, IGNORED, None, duplicate=False)
    payment, merchant = _match(session, driver, claimed, incoming, owner, publish)
    if payment is None:
        _unassign(session, [claimed])
        return Outcome(claimed, UNASSIGNED, None, duplicate=False)
    return Outcome(claimed, RECORDED, payment, duplicate=False, merchant=merchant)


def _unassign(session: Session, notification_ids: list[int]) -> None:
    """Mark claimed notifications that matched nobody as unassigned."""
    session.connection().execute(
        sa.update(_NOTIFICATIONS).where(_NOTIFICATIONS.c.id.in_(notification_ids)).values(status=UNASSIGNED)
    )


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
    return Outcome(existing.id, existing.status, payment, duplicate=True)


@dataclass(frozen=True)
class Delivery:
    """One verified delivery waiting to be recorded, with what recording it needs."""

    incoming: Incoming
    body: bytes
    keys: DataKeys
    publish: Publish | None = None


# PostgreSQL, through the driver: a group's notifications claimed in one statement, in key order
# (so that two groups never wait on each other's keys in a cycle), and its payments in one more.
_CLAIM_MANY_PG = f"""
INSERT INTO bank_notifications ({", ".join(_CLAIM_COLUMNS)})
SELECT {", ".join(_CLAIM_COLUMNS)}
FROM json_populate_recordset(NULL::bank_notifications, %(rows)s)
ORDER BY connector, dedup_key
ON CONFLICT (connector, dedup_key) DO NOTHING
RETURNING id, connector, dedup_key
"""
_OWNERS_PG = """
SELECT m.bin, m.account_number, m.id, m.public_id
FROM merchants m
JOIN unnest(%(bins)s::text[], %(accounts)s::text[]) AS wanted(bin, account)
    ON m.bin = wanted.bin AND m.account_number = wanted.account
WHERE m.status = %(active)s
"""
_INSERT_PAYMENTS_PG = f"""
INSERT INTO payments ({", ".join(_PAYMENT_COLUMNS)})
SELECT {", ".join(_PAYMENT_COLUMNS)} FROM json_populate_recordset(NULL::payments, %(rows)s)
RETURNING id, notification_id
"""


def _json_value(value: object) -> str:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")


def _rows_json(rows: list[dict[str, Any]]) -> str:
    return json.dumps(rows, default=_json_value, ensure_ascii=False)


def record_many(session: Session, deliveries: list[Delivery]) -> list[Outcome | ReusedId]:
    """Record each of ``deliveries`` as :func:`record` would, together (PostgreSQL only).

    Each gets its own outcome, or the :class:`ReusedId` that refuses it (nothing is written for
    it; the caller keeps the conflicting body). The same notification delivered twice in the
    group is claimed by the first delivery; the other is its redelivery. The common case, a
    static-QR payment to a registered account, costs the group five statements whatever its
    size: the claim, the merchants, the ledger's two, the payment rows. A notification whose
    text names a reference is matched alone, as :func:`record` matches it.
    """
    driver = _driver(session)
    values = [_values(d.keys, d.incoming, d.body) for d in deliveries]
    rows = driver.execute(_CLAIM_MANY_PG, {"rows": _rows_json(values)}).fetchall()
    new = {(connector, key): claimed for claimed, connector, key in rows}
    claims: list[int | None] = []
    for v in values:  # the first delivery of a key claims it; a repeat is its redelivery
        claims.append(new.pop((v["connector"], v["dedup_key"]), None))
    owners = _owners(
        driver,
        {
            (d.incoming.bin, d.incoming.account_number.upper())
            for d, claimed, v in zip(deliveries, claims, values, strict=True)
            if claimed is not None and v["status"] != IGNORED and d.incoming.bin is not None
        },
    )
    out: list[Outcome | ReusedId | None] = [None] * len(deliveries)
    static: list[tuple[int, _Paid, tuple[int, str], Publish | None]] = []
    unassigned: list[int] = []
    for i, (d, claimed, v) in enumerate(zip(deliveries, claims, values, strict=True)):
        if claimed is None:
            continue
        incoming = d.incoming
        owner = owners.get((incoming.bin, incoming.account_number.upper())) if incoming.bin else None
        if v["status"] == IGNORED:
            out[i] = Outcome(claimed, IGNORED, None, duplicate=False)
            continue
        payment: PaymentRecord | None = None
        if matching.candidates(incoming.description, incoming.code):
            payment, merchant = _match(session, driver, claimed, incoming, owner, d.publish)
        elif owner is not None:
            static.append((i, _paid_of(claimed, incoming), owner, d.publish))
            continue
        if payment is None:
            unassigned.append(claimed)
            out[i] = Outcome(claimed, UNASSIGNED, None, duplicate=False)
        else:
            out[i] = Outcome(claimed, RECORDED, payment, duplicate=False, merchant=merchant)
    if unassigned:
        _unassign(session, unassigned)
    if static:
        for i, outcome in _pay_static(session, driver, static):
            out[i] = outcome
    for i, (d, claimed, v) in enumerate(zip(deliveries, claims, values, strict=True)):
        if claimed is None:  # after the payments: a repeat within the group finds its original's
            try:
                out[i] = _replay(session, d.incoming, v["content_sha256"])
            except ReusedId as exc:
                out[i] = exc
    assert all(o is not None for o in out)  # every delivery has its outcome, in place
    return cast(list[Outcome | ReusedId], out)


def _owners(
    driver: Any, accounts: set[tuple[str | None, str]]
) -> dict[tuple[str | None, str], tuple[int, str]]:
    """Return the active merchant (id, public id) owning each of ``accounts`` that one owns."""
    if not accounts:
        return {}
    bins, numbers = zip(*sorted(accounts, key=str), strict=True)
    params = {"bins": list(bins), "accounts": list(numbers), "active": MerchantStatus.ACTIVE.value}
    return {(b, a): (mid, pid) for b, a, mid, pid in driver.execute(_OWNERS_PG, params).fetchall()}


def _pay_static(
    session: Session, driver: Any, static: list[tuple[int, _Paid, tuple[int, str], Publish | None]]
) -> list[tuple[int, Outcome]]:
    """Post and insert the static-QR payments of a group; publish each after the commit."""
    posted = ledger.post_payments(
        session, [(_payment_spec(p, owner[1], None), owner[1]) for _, p, owner, _ in static]
    )
    rows = [
        _payment_row(paid, owner[0], None, None, "static", None, record.id)
        for (_, paid, owner, _), record in zip(static, posted, strict=True)
    ]
    inserted = driver.execute(_INSERT_PAYMENTS_PG, {"rows": _rows_json(rows)}).fetchall()
    ids = {notification: payment for payment, notification in inserted}
    out: list[tuple[int, Outcome]] = []
    events: list[tuple[Publish, PaymentEvent]] = []
    for (i, paid, owner, publish), row in zip(static, rows, strict=True):
        payment = PaymentRecord(ids[paid.notification_id], **row)
        out.append((i, Outcome(paid.notification_id, RECORDED, payment, duplicate=False, merchant=owner[1])))
        if publish is not None:
            events.append(
                (publish, PaymentEvent(owner[0], payment.id, paid.amount, None, paid.occurred_at, None))
            )
    if events:

        def announce() -> None:
            for publish, event in events:
                publish(event)

        db.after_commit(session, announce)
    return out


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
    session: Session,
    driver: Any,
    notification_id: int,
    incoming: Incoming,
    owner: Any,
    publish: Publish | None,
) -> tuple[PaymentRecord | None, str | None]:
    paid = _paid_of(notification_id, incoming)
    for reference in matching.candidates(incoming.description, incoming.code):
        intent = intents.find_open_intent(session, reference, lock=True)
        if intent is not None:
            merchant = session.get(Merchant, intent.merchant_id)
            assert merchant is not None
            owner = (merchant.id, merchant.public_id)
            return _pay(session, paid, owner, intent, "intent", publish, driver), merchant.public_id
    if owner is _UNKNOWN:
        owner = _active_merchant(session, incoming.bin, incoming.account_number)
    if owner is None:
        return None, None
    return _pay(session, paid, owner, None, "static", publish, driver), owner[1]


def _payment_spec(paid: _Paid, merchant: str, reference: str | None) -> TransactionSpec:
    return ledger.payment_spec(
        merchant=merchant,
        connector=paid.connector,
        dedup_key=paid.dedup_key,
        bank_txn_id=paid.bank_txn_id,
        amount=paid.amount,
        occurred_at=paid.occurred_at,
        reference=reference,
        connector_txn_id=paid.connector_txn_id,
    )


def _payment_row(
    paid: _Paid,
    merchant_id: int,
    intent_id: int | None,
    reference: str | None,
    kind: str,
    flag: str | None,
    ledger_tx_id: int,
) -> dict[str, Any]:
    """Return a payment row's values (the columns of :data:`_PAYMENT_COLUMNS`)."""
    return {
        "notification_id": paid.notification_id,
        "merchant_id": merchant_id,
        "intent_id": intent_id,
        "connector": paid.connector,
        "bank_txn_id": paid.bank_txn_id,
        "amount": paid.amount,
        "reference": reference,
        "kind": kind,
        "flag": flag,
        "occurred_at": paid.occurred_at,
        "recorded_at": utcnow(),
        "ledger_tx_id": ledger_tx_id,
    }


@dataclass(frozen=True, slots=True)
class _Paid:
    """What a payment takes from its notification."""

    notification_id: int
    connector: str
    dedup_key: str
    bank_txn_id: str
    amount: int
    occurred_at: dt.datetime
    connector_txn_id: str | None


def _paid_of(notification_id: int, incoming: Incoming) -> _Paid:
    return _Paid(
        notification_id,
        incoming.connector,
        incoming.dedup_key,
        incoming.bank_txn_id,
        incoming.amount,
        incoming.occurred_at.astimezone(dt.UTC),
        incoming.connector_txn_id,
    )


def _pay(
    session: Session,
    paid: _Paid,
    merchant: tuple[int, str],
    intent: PaymentIntent | None,
    kind: str,
    publish: Publish | None,
    driver: Any = None,
) -> PaymentRecord:
    """Settle the intent, post the payment and insert its row; ``driver`` is psycopg's, if known."""
    merchant_id, merchant_public_id = merchant
    occurred_at = paid.occurred_at
    flag: str | None = None
    if intent is not None:
        settled = intents.settle_intent(session, intent, paid.amount, occurred_at)
        flag = settled if settled in FLAGS else None
    reference = intent.reference if intent is not None else None
    spec = _payment_spec(paid, merchant_public_id, reference)
    posted = ledger.post_payment(session, spec, merchant_public_id)
    intent_id = intent.id if intent is not None else None
    row = _payment_row(paid, merchant_id, intent_id, reference, kind, flag, posted.id)
    if driver is None and _postgres(session):
        driver = _driver(session)
    if driver is not None:
        payment_id = driver.execute(_INSERT_PAYMENT_PG, row).fetchone()[0]
    else:
        payment_id = session.connection().execute(_INSERT_PAYMENT, row).scalar_one()
    payment = PaymentRecord(payment_id, **row)
    if publish is not None:
        event = PaymentEvent(merchant_id, payment_id, paid.amount, reference, occurred_at, flag)
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
) -> PaymentRecord:
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
    paid = _Paid(
        notification.id,
        notification.connector,
        notification.dedup_key,
        notification.bank_txn_id,
        notification.amount,
        notification.occurred_at,
        None,
    )
    return _pay(session, paid, (merchant.id, merchant.public_id), intent, "assigned", publish)


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

"""Tables of the intake: connectors and their secrets, notifications, payments, conflicts.

A notification row exists for everything a connector reported and chopay accepted, payment or
not (``status``: ``recorded``, ``unassigned`` or ``ignored``; ``sender_status`` says why a
notification the sender reported as a failed payment was ignored); ``(connector, dedup_key)`` is
unique, which is what makes a redelivery, or fifty of them at once, record one payment. A
payment row exists only for a recorded notification, always with its ledger transaction
(``ledger_tx_id`` is not nullable: both are written in one database transaction).

The account number and payer name a bank reports are personal data: they are stored
encrypted (``protected_column``), the account also as a keyed blind index, and the raw body is
kept encrypted for review.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from chopay.crypto import protected_column
from chopay.db import Base, CreatedAt, Money, intpk

CONNECTOR_SECRET = protected_column("bank_connector_secrets", "secret")
NOTIFICATION_ACCOUNT = protected_column("bank_notifications", "account_number")
NOTIFICATION_PAYER = protected_column("bank_notifications", "payer_name")
NOTIFICATION_BODY = protected_column("bank_notifications", "body")
CONFLICT_BODY = protected_column("bank_notification_conflicts", "body")
ACCOUNT_INDEX = "bank_notifications.account"
"""Blind-index context of a notification's ``bin:account_number`` (or ``:account_number``)."""

Id = sa.BigInteger().with_variant(sa.Integer, "sqlite")


class BankConnector(Base):
    __tablename__ = "bank_connectors"

    id: Mapped[intpk]
    name: Mapped[str] = mapped_column(sa.String(40), unique=True)
    format: Mapped[str] = mapped_column(sa.String(8))
    bin: Mapped[str | None] = mapped_column(sa.String(6))
    created_at: Mapped[CreatedAt]
    created_by: Mapped[int | None] = mapped_column(Id, sa.ForeignKey("users.id"))

    __table_args__ = (sa.CheckConstraint("format IN ('chopay', 'sepay', 'payos')", name="format_known"),)


class ConnectorSecret(Base):
    """One live (or retired) secret of a connector: HMAC keys encrypted, API keys hashed."""

    __tablename__ = "bank_connector_secrets"

    id: Mapped[intpk]
    connector_id: Mapped[int] = mapped_column(Id, sa.ForeignKey("bank_connectors.id"))
    secret: Mapped[str | None] = mapped_column(sa.Text)
    secret_sha256: Mapped[str | None] = mapped_column(sa.String(64))
    hint: Mapped[str] = mapped_column(sa.String(16))
    created_at: Mapped[CreatedAt]
    expires_at: Mapped[dt.datetime | None]

    __table_args__ = (
        sa.Index("ix_bank_connector_secrets_connector", "connector_id", "id"),
        sa.CheckConstraint("(secret IS NULL) <> (secret_sha256 IS NULL)", name="one_form"),
    )


class BankNotification(Base):
    __tablename__ = "bank_notifications"

    id: Mapped[intpk]
    connector: Mapped[str] = mapped_column(sa.String(40))
    format: Mapped[str] = mapped_column(sa.String(8))
    dedup_key: Mapped[str] = mapped_column(sa.String(100))
    content_sha256: Mapped[str] = mapped_column(sa.String(64))
    status: Mapped[str] = mapped_column(sa.String(12))
    direction: Mapped[str] = mapped_column(sa.String(3))
    bank_txn_id: Mapped[str] = mapped_column(sa.String(100))
    bin: Mapped[str | None] = mapped_column(sa.String(6))
    account_number: Mapped[str] = mapped_column(sa.Text)
    account_index: Mapped[str] = mapped_column(sa.String(64))
    account_last4: Mapped[str] = mapped_column(sa.String(4))
    amount: Mapped[Money]
    description: Mapped[str] = mapped_column(sa.String(500))
    code: Mapped[str | None] = mapped_column(sa.String(100))
    sender_status: Mapped[str | None] = mapped_column(sa.String(200))
    payer_name: Mapped[str | None] = mapped_column(sa.Text)
    body: Mapped[str] = mapped_column(sa.Text)
    occurred_at: Mapped[dt.datetime]
    received_at: Mapped[CreatedAt]
    assigned_by: Mapped[int | None] = mapped_column(Id, sa.ForeignKey("users.id"))
    assigned_at: Mapped[dt.datetime | None]

    __table_args__ = (
        sa.UniqueConstraint("connector", "dedup_key", name="uq_bank_notifications_connector_dedup_key"),
        sa.Index("ix_bank_notifications_status", "status", "id"),
        sa.CheckConstraint("status IN ('recorded', 'unassigned', 'ignored')", name="status_known"),
        sa.CheckConstraint("direction IN ('in', 'out')", name="direction_known"),
        sa.CheckConstraint("amount > 0", name="amount_positive"),
    )


class Payment(Base):
    """A payment a merchant received: one recorded notification, one ledger transaction."""

    __tablename__ = "payments"

    id: Mapped[intpk]
    notification_id: Mapped[int] = mapped_column(Id, sa.ForeignKey("bank_notifications.id"), unique=True)
    merchant_id: Mapped[int] = mapped_column(Id, sa.ForeignKey("merchants.id"))
    intent_id: Mapped[int | None] = mapped_column(Id, sa.ForeignKey("payment_intents.id"))
    connector: Mapped[str] = mapped_column(sa.String(40))
    bank_txn_id: Mapped[str] = mapped_column(sa.String(100))
    amount: Mapped[Money]
    reference: Mapped[str | None] = mapped_column(sa.String(10))
    kind: Mapped[str] = mapped_column(sa.String(8))
    flag: Mapped[str | None] = mapped_column(sa.String(12))
    occurred_at: Mapped[dt.datetime]
    recorded_at: Mapped[CreatedAt]
    ledger_tx_id: Mapped[int] = mapped_column(Id, sa.ForeignKey("ledger_transactions.id"), unique=True)

    __table_args__ = (
        sa.Index("ix_payments_merchant", "merchant_id", "id"),
        sa.Index("ix_payments_merchant_occurred", "merchant_id", "occurred_at"),
        sa.CheckConstraint("kind IN ('intent', 'static', 'assigned')", name="kind_known"),
        sa.CheckConstraint("flag IS NULL OR flag IN ('underpaid', 'overpaid')", name="flag_known"),
        sa.CheckConstraint("amount > 0", name="amount_positive"),
    )


class NotificationConflict(Base):
    """A notification that reused a (connector, bank transaction id) with different content."""

    __tablename__ = "bank_notification_conflicts"

    id: Mapped[intpk]
    notification_id: Mapped[int] = mapped_column(Id, sa.ForeignKey("bank_notifications.id"))
    content_sha256: Mapped[str] = mapped_column(sa.String(64))
    body: Mapped[str] = mapped_column(sa.Text)
    received_at: Mapped[CreatedAt]

    __table_args__ = (
        sa.UniqueConstraint(
            "notification_id", "content_sha256", name="uq_bank_notification_conflicts_notification_content"
        ),
    )

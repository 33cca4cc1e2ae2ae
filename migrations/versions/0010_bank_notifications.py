"""bank notifications: connectors and their secrets, notifications, payments, conflicts

Revision ID: 0010
Revises: 0008
Create Date: 2026-12-02 00:53:51.185203

A notification is unique per (connector, dedup key): that constraint is what records a
redelivery once. A payment is unique per notification and per ledger transaction.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "bank_connectors",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("format", sa.String(length=8), nullable=False),
        sa.Column("bin", sa.String(length=6), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.CheckConstraint(
            "format IN ('chopay', 'sepay', 'payos')", name=op.f("ck_bank_connectors_format_known")
        ),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_bank_connectors_created_by_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bank_connectors")),
        sa.UniqueConstraint("name", name=op.f("uq_bank_connectors_name")),
    )
    op.create_table(
        "bank_notifications",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("connector", sa.String(length=40), nullable=False),
        sa.Column("format", sa.String(length=8), nullable=False),
        sa.Column("dedup_key", sa.String(length=100), nullable=False),
        sa.Column("content_sha256", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("direction", sa.String(length=3), nullable=False),
        sa.Column("bank_txn_id", sa.String(length=100), nullable=False),
        sa.Column("bin", sa.String(length=6), nullable=True),
        sa.Column("account_number", sa.Text(), nullable=False),
        sa.Column("account_index", sa.String(length=64), nullable=False),
        sa.Column("account_last4", sa.String(length=4), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=False),
        sa.Column("code", sa.String(length=100), nullable=True),
        sa.Column("payer_name", sa.Text(), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("assigned_by", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("direction IN ('in', 'out')", name=op.f("ck_bank_notifications_direction_known")),
        sa.CheckConstraint(
            "status IN ('recorded', 'unassigned', 'ignored')", name=op.f("ck_bank_notifications_status_known")
        ),
        sa.CheckConstraint("amount > 0", name=op.f("ck_bank_notifications_amount_positive")),
        sa.ForeignKeyConstraint(
            ["assigned_by"], ["users.id"], name=op.f("fk_bank_notifications_assigned_by_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bank_notifications")),
        sa.UniqueConstraint("connector", "dedup_key", name="uq_bank_notifications_connector_dedup_key"),
    )
    with op.batch_alter_table("bank_notifications", schema=None) as batch_op:
        batch_op.create_index("ix_bank_notifications_status", ["status", "id"], unique=False)

    op.create_table(
        "bank_connector_secrets",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("connector_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("secret", sa.Text(), nullable=True),
        sa.Column("secret_sha256", sa.String(length=64), nullable=True),
        sa.Column("hint", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "(secret IS NULL) <> (secret_sha256 IS NULL)", name=op.f("ck_bank_connector_secrets_one_form")
        ),
        sa.ForeignKeyConstraint(
            ["connector_id"],
            ["bank_connectors.id"],
            name=op.f("fk_bank_connector_secrets_connector_id_bank_connectors"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bank_connector_secrets")),
    )
    with op.batch_alter_table("bank_connector_secrets", schema=None) as batch_op:
        batch_op.create_index("ix_bank_connector_secrets_connector", ["connector_id", "id"], unique=False)

    op.create_table(
        "bank_notification_conflicts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("notification_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("content_sha256", sa.String(length=64), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["notification_id"],
            ["bank_notifications.id"],
            name=op.f("fk_bank_notification_conflicts_notification_id_bank_notifications"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bank_notification_conflicts")),
        sa.UniqueConstraint(
            "notification_id", "content_sha256", name="uq_bank_notification_conflicts_notification_content"
        ),
    )
    op.create_table(
        "payments",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("notification_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("merchant_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("intent_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("connector", sa.String(length=40), nullable=False),
        sa.Column("bank_txn_id", sa.String(length=100), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("reference", sa.String(length=10), nullable=True),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("flag", sa.String(length=12), nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ledger_tx_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.CheckConstraint(
            "flag IS NULL OR flag IN ('underpaid', 'overpaid')", name=op.f("ck_payments_flag_known")
        ),
        sa.CheckConstraint("kind IN ('intent', 'static', 'assigned')", name=op.f("ck_payments_kind_known")),
        sa.CheckConstraint("amount > 0", name=op.f("ck_payments_amount_positive")),
        sa.ForeignKeyConstraint(
            ["intent_id"], ["payment_intents.id"], name=op.f("fk_payments_intent_id_payment_intents")
        ),
        sa.ForeignKeyConstraint(
            ["ledger_tx_id"],
            ["ledger_transactions.id"],
            name=op.f("fk_payments_ledger_tx_id_ledger_transactions"),
        ),
        sa.ForeignKeyConstraint(
            ["merchant_id"], ["merchants.id"], name=op.f("fk_payments_merchant_id_merchants")
        ),
        sa.ForeignKeyConstraint(
            ["notification_id"],
            ["bank_notifications.id"],
            name=op.f("fk_payments_notification_id_bank_notifications"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payments")),
        sa.UniqueConstraint("ledger_tx_id", name=op.f("uq_payments_ledger_tx_id")),
        sa.UniqueConstraint("notification_id", name=op.f("uq_payments_notification_id")),
    )
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.create_index("ix_payments_merchant", ["merchant_id", "id"], unique=False)
        batch_op.create_index("ix_payments_merchant_occurred", ["merchant_id", "occurred_at"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.drop_index("ix_payments_merchant_occurred")
        batch_op.drop_index("ix_payments_merchant")

    op.drop_table("payments")
    op.drop_table("bank_notification_conflicts")
    with op.batch_alter_table("bank_connector_secrets", schema=None) as batch_op:
        batch_op.drop_index("ix_bank_connector_secrets_connector")

    op.drop_table("bank_connector_secrets")
    with op.batch_alter_table("bank_notifications", schema=None) as batch_op:
        batch_op.drop_index("ix_bank_notifications_status")

    op.drop_table("bank_notifications")
    op.drop_table("bank_connectors")

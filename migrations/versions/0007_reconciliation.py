"""reconciliation: statements, reconciliations, report items, encrypted texts and decisions

Revision ID: 0007
Revises: 0005
Create Date: 2026-12-01 23:05:52.844911

Statements are imported once (unique fingerprint). Report items are keyed by (reconciliation,
position) and never change; a partial index finds the items that are not plain matches.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "reconciliation_statements",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("format", sa.String(length=40), nullable=False),
        sa.Column("account", sa.Text(), nullable=True),
        sa.Column("statement_ref", sa.Text(), nullable=True),
        sa.Column("period_from", sa.Date(), nullable=False),
        sa.Column("period_to", sa.Date(), nullable=False),
        sa.Column("opening_balance", sa.BigInteger(), nullable=False),
        sa.Column("closing_balance", sa.BigInteger(), nullable=False),
        sa.Column("line_count", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("content_sha256", sa.String(length=64), nullable=False),
        sa.Column("content_bytes", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("imported_by", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["imported_by"], ["users.id"], name=op.f("fk_reconciliation_statements_imported_by_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reconciliation_statements")),
        sa.UniqueConstraint("fingerprint", name=op.f("uq_reconciliation_statements_fingerprint")),
    )
    op.create_table(
        "reconciliations",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("statement_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("account", sa.String(length=120), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("phase", sa.String(length=16), nullable=False),
        sa.Column("progress", sa.SmallInteger(), nullable=False),
        sa.Column("error_code", sa.String(length=60), nullable=True),
        sa.Column("error_detail", sa.String(length=500), nullable=True),
        sa.Column("date_window_days", sa.SmallInteger(), nullable=False),
        sa.Column("fuzzy_threshold", sa.SmallInteger(), nullable=False),
        sa.Column("checkpoint_size", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("checkpoint_root", sa.LargeBinary(length=32), nullable=True),
        sa.Column("checkpoint_note", sa.Text(), nullable=True),
        sa.Column("ledger_opening", sa.BigInteger(), nullable=True),
        sa.Column("ledger_closing", sa.BigInteger(), nullable=True),
        sa.Column("ledger_at_checkpoint", sa.BigInteger(), nullable=True),
        sa.Column("explained", sa.BigInteger(), nullable=True),
        sa.Column("unexplained", sa.BigInteger(), nullable=True),
        sa.Column("fully_explained", sa.Boolean(), nullable=True),
        sa.Column("item_count", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("stats", sa.JSON(), nullable=True),
        sa.Column("report_digest", sa.String(length=64), nullable=True),
        sa.Column("attestation_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("created_by", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "phase IN ('queued', 'pinning', 'loading', 'matching', 'writing', 'done', 'failed')",
            name=op.f("ck_reconciliations_phase_known"),
        ),
        sa.CheckConstraint(
            "status IN ('queued', 'running', 'done', 'failed')", name=op.f("ck_reconciliations_status_known")
        ),
        sa.CheckConstraint("progress BETWEEN 0 AND 100", name=op.f("ck_reconciliations_progress_percent")),
        sa.ForeignKeyConstraint(
            ["attestation_id"],
            ["ledger_transactions.id"],
            name=op.f("fk_reconciliations_attestation_id_ledger_transactions"),
        ),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_reconciliations_created_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["statement_id"],
            ["reconciliation_statements.id"],
            name=op.f("fk_reconciliations_statement_id_reconciliation_statements"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reconciliations")),
        sa.UniqueConstraint("statement_id", name=op.f("uq_reconciliations_statement_id")),
    )
    with op.batch_alter_table("reconciliations", schema=None) as batch_op:
        batch_op.create_index("ix_reconciliations_status", ["status"], unique=False)

    op.create_table(
        "reconciliation_items",
        sa.Column(
            "reconciliation_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=False,
            nullable=False,
        ),
        sa.Column(
            "position",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=False,
            nullable=False,
        ),
        sa.Column("category", sa.String(length=20), nullable=False),
        sa.Column("rule", sa.String(length=16), nullable=True),
        sa.Column("line_id", sa.String(length=100), nullable=True),
        sa.Column("booking_date", sa.Date(), nullable=True),
        sa.Column("value_date", sa.Date(), nullable=True),
        sa.Column("amount", sa.BigInteger(), nullable=True),
        sa.Column("reference", sa.String(length=200), nullable=True),
        sa.Column("source", sa.String(length=200), nullable=True),
        sa.Column("reversal", sa.Boolean(), nullable=True),
        sa.Column("transactions", sa.Text(), nullable=True),
        sa.Column("ledger_amount", sa.BigInteger(), nullable=True),
        sa.Column("ledger_date", sa.Date(), nullable=True),
        sa.Column("ledger_reference", sa.String(length=100), nullable=True),
        sa.Column("related", sa.String(length=24), nullable=True),
        sa.Column("score", sa.SmallInteger(), nullable=True),
        sa.Column("difference", sa.BigInteger(), nullable=False),
        sa.CheckConstraint(
            "category IN ('matched', 'suggested', 'missing_in_ledger', 'missing_in_bank', "
            "'amount_mismatch', 'duplicate_in_bank', 'returned')",
            name=op.f("ck_reconciliation_items_category_known"),
        ),
        sa.CheckConstraint(
            "rule IS NULL OR rule IN ('bank_txn_id', 'reference', 'many_to_one', 'tolerant')",
            name=op.f("ck_reconciliation_items_rule_known"),
        ),
        sa.ForeignKeyConstraint(
            ["reconciliation_id"],
            ["reconciliations.id"],
            name=op.f("fk_reconciliation_items_reconciliation_id_reconciliations"),
        ),
        sa.PrimaryKeyConstraint("reconciliation_id", "position", name=op.f("pk_reconciliation_items")),
    )
    with op.batch_alter_table("reconciliation_items", schema=None) as batch_op:
        batch_op.create_index(
            "ix_reconciliation_items_open",
            ["reconciliation_id", "category", "position"],
            unique=False,
            postgresql_where=sa.text("category <> 'matched'"),
            sqlite_where=sa.text("category <> 'matched'"),
        )

    op.create_table(
        "reconciliation_texts",
        sa.Column(
            "reconciliation_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=False,
            nullable=False,
        ),
        sa.Column(
            "block", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=False, nullable=False
        ),
        sa.Column("descriptions", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["reconciliation_id"],
            ["reconciliations.id"],
            name=op.f("fk_reconciliation_texts_reconciliation_id_reconciliations"),
        ),
        sa.PrimaryKeyConstraint("reconciliation_id", "block", name=op.f("pk_reconciliation_texts")),
    )
    op.create_table(
        "reconciliation_totals",
        sa.Column("reconciliation_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("category", sa.String(length=20), nullable=False),
        sa.Column("count", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("bank_amount", sa.BigInteger(), nullable=False),
        sa.Column("ledger_amount", sa.BigInteger(), nullable=False),
        sa.Column("difference", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["reconciliation_id"],
            ["reconciliations.id"],
            name=op.f("fk_reconciliation_totals_reconciliation_id_reconciliations"),
        ),
        sa.PrimaryKeyConstraint("reconciliation_id", "category", name=op.f("pk_reconciliation_totals")),
    )
    op.create_table(
        "reconciliation_decisions",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("reconciliation_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("position", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("note", sa.String(length=500), nullable=True),
        sa.Column("reversal_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("decided_by", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "action IN ('confirmed', 'rejected', 'reversed')",
            name=op.f("ck_reconciliation_decisions_action_known"),
        ),
        sa.ForeignKeyConstraint(
            ["decided_by"], ["users.id"], name=op.f("fk_reconciliation_decisions_decided_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["reconciliation_id", "position"],
            ["reconciliation_items.reconciliation_id", "reconciliation_items.position"],
            name="fk_reconciliation_decisions_item",
        ),
        sa.ForeignKeyConstraint(
            ["reversal_id"],
            ["ledger_transactions.id"],
            name=op.f("fk_reconciliation_decisions_reversal_id_ledger_transactions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reconciliation_decisions")),
        sa.UniqueConstraint(
            "reconciliation_id",
            "position",
            name=op.f("uq_reconciliation_decisions_reconciliation_id_position"),
        ),
    )


def downgrade() -> None:
    op.drop_table("reconciliation_decisions")
    op.drop_table("reconciliation_totals")
    op.drop_table("reconciliation_texts")
    with op.batch_alter_table("reconciliation_items", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_reconciliation_items_open",
            postgresql_where=sa.text("category <> 'matched'"),
            sqlite_where=sa.text("category <> 'matched'"),
        )

    op.drop_table("reconciliation_items")
    with op.batch_alter_table("reconciliations", schema=None) as batch_op:
        batch_op.drop_index("ix_reconciliations_status")

    op.drop_table("reconciliations")
    op.drop_table("reconciliation_statements")

"""idempotency records written with their response; bounded balances and postings

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 22:10:00.000000

An idempotency record is now inserted in the same transaction as the request's effects and
always holds its response, so the columns of the response are required and ``completed_at``
(which equalled ``created_at``) goes. Claims left by requests in flight at upgrade time hold no
response; they are dropped, which lets those clients retry.

Balances are bounded by CHECK constraints at 10**18 dong either way, and postings at the
13-digit EMVCo amount, so no sum can overflow a 64-bit column (on SQLite, turn into a REAL).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MAX_BALANCE = 10**18
MAX_AMOUNT = 10**13 - 1


def upgrade() -> None:
    op.execute("DELETE FROM idempotency_keys WHERE status IS NULL OR body IS NULL")
    op.execute("UPDATE idempotency_keys SET headers = '{}' WHERE headers IS NULL")
    with op.batch_alter_table("idempotency_keys") as batch:
        batch.alter_column(
            "status", existing_type=sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        )
        batch.alter_column("body", existing_type=sa.LargeBinary(), nullable=False)
        batch.alter_column("headers", existing_type=sa.Text(), nullable=False)
        batch.drop_column("completed_at")
    with op.batch_alter_table("ledger_accounts") as batch:
        batch.create_check_constraint(
            op.f("ck_ledger_accounts_balance_bounded"), f"balance BETWEEN {-MAX_BALANCE} AND {MAX_BALANCE}"
        )
    with op.batch_alter_table("ledger_postings") as batch:
        batch.create_check_constraint(
            op.f("ck_ledger_postings_amount_bounded"), f"amount BETWEEN {-MAX_AMOUNT} AND {MAX_AMOUNT}"
        )


def downgrade() -> None:
    with op.batch_alter_table("ledger_postings") as batch:
        batch.drop_constraint(op.f("ck_ledger_postings_amount_bounded"), type_="check")
    with op.batch_alter_table("ledger_accounts") as batch:
        batch.drop_constraint(op.f("ck_ledger_accounts_balance_bounded"), type_="check")
    with op.batch_alter_table("idempotency_keys") as batch:
        batch.add_column(sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True))
        batch.alter_column("headers", existing_type=sa.Text(), nullable=True)
        batch.alter_column("body", existing_type=sa.LargeBinary(), nullable=True)
        batch.alter_column(
            "status", existing_type=sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        )

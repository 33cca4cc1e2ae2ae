"""payouts: execution times, checkpoint size, alert and pre-check of a batch; pre-check of an item

Revision ID: 0009
Revises: 0011
Create Date: 2026-12-02 01:00:00.000000

A running batch records when it started and finished, the size of the signed checkpoint that
sealed it, the alert that paused it (insufficient funds at the source) and its pre-check's
progress; an item records what the pre-check found about its destination, and the rail reference
of the chunk it was last sent in (so that any worker can ask the rail about the whole chunk).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("payout_batches", sa.Column("started_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("payout_batches", sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("payout_batches", sa.Column("progress_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("payout_batches", sa.Column("tree_size", sa.BigInteger(), nullable=True))
    op.add_column("payout_batches", sa.Column("alert", sa.JSON(), nullable=True))
    op.add_column("payout_batches", sa.Column("precheck", sa.JSON(), nullable=True))
    op.add_column("payout_items", sa.Column("precheck_code", sa.String(length=32), nullable=True))
    op.add_column("payout_items", sa.Column("chunk_ref", sa.String(length=16), nullable=True))


def downgrade() -> None:
    op.drop_column("payout_items", "chunk_ref")
    op.drop_column("payout_items", "precheck_code")
    for column in ("precheck", "alert", "tree_size", "progress_at", "finished_at", "started_at"):
        op.drop_column("payout_batches", column)

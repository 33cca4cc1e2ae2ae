"""bank notifications: what the sender said of a payment that did not go through

Revision ID: 0012
Revises: 0009
Create Date: 2026-12-02 07:30:00

payOS also delivers webhooks for payments that were not made (``code`` other than "00", or
``success`` false). They are acknowledged and kept for audit as ``ignored`` notifications,
not payments: no payment row, no ledger posting, no event. ``sender_status`` keeps what the
sender reported (payOS's code and description), so that an officer can tell such a
notification from a SePay debit. A nullable column added and dropped as such: neither
PostgreSQL nor SQLite rebuilds the table.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("bank_notifications", sa.Column("sender_status", sa.String(length=200), nullable=True))


def downgrade() -> None:
    op.drop_column("bank_notifications", "sender_status")

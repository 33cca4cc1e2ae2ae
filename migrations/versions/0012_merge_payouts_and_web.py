"""merge the payouts and web sessions branches of the schema

Revision ID: 0012
Revises: 0009, 0011
Create Date: 2026-12-02 02:05:00

Payouts (0009) and web sessions (0011) were written side by side; this revision joins them so
the schema has one head again. It changes nothing.
"""

from collections.abc import Sequence

revision: str = "0012"
down_revision: str | tuple[str, ...] | None = ("0009", "0011")
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass

"""Join the two lines of migrations after 0008: bank notifications (0010) and web sessions (0011).

Revision ID: 0012
Revises: 0010, 0011
"""

from __future__ import annotations

revision: str = "0012"
down_revision: tuple[str, ...] = ("0010", "0011")
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Nothing to change: both lines only add tables of their own."""


def downgrade() -> None:
    """Nothing to change."""

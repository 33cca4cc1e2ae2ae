"""Tables of reconciliation: statements, reconciliations, their totals, items, texts and decisions.

A statement is imported once: its :attr:`StatementRecord.fingerprint` (what the statement says,
see :mod:`.statements.model`) is unique. The original file is kept, compressed and encrypted,
as evidence and as what the job reads. A reconciliation matches one statement against one
ledger account at a pinned, signed checkpoint; its report is the ordered list of
:class:`Item` rows (one per statement line, then one per ledger item the bank lacks) with the
totals per category and the balance check on the reconciliation row. Report rows never change
once written: auditors' decisions on them (confirming a suggestion, reversing a return) live in
:class:`Decision`, so that the sealed digest of the report stays checkable.

Personal data: the statement's account identification and reference, the original file and
the lines' descriptions (payer names) are ciphertext made by :meth:`chopay.crypto.DataKeys.encrypt`.
Descriptions are sealed in blocks of :data:`TEXT_BLOCK` lines (a JSON list per block), so a
million lines cost a thousand encryptions, and a page of items opens one or two blocks.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from chopay.crypto import protected_column
from chopay.db import Base, CreatedAt, Money, Timestamp, intpk
from payments.reconciliation.domain import Category, Rule

TEXT_BLOCK = 1000
"""Line descriptions per encrypted block."""
STATUSES = ("queued", "running", "done", "failed")
PHASES = ("queued", "pinning", "loading", "matching", "writing", "done", "failed")
ACTIONS = ("confirmed", "rejected", "reversed")
MAX_SOURCE = 200

STATEMENT_ACCOUNT = protected_column("reconciliation_statements", "account")
STATEMENT_REF = protected_column("reconciliation_statements", "statement_ref")
STATEMENT_CONTENT = protected_column("reconciliation_statements", "content")
DESCRIPTIONS = protected_column("reconciliation_texts", "descriptions")

BigId = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(str(v)) for v in values)})"


class StatementRecord(Base):
    __tablename__ = "reconciliation_statements"

    id: Mapped[intpk]
    fingerprint: Mapped[str] = mapped_column(sa.String(64), unique=True)
    format: Mapped[str] = mapped_column(sa.String(40))
    account: Mapped[str | None] = mapped_column(sa.Text)
    """Ciphertext of the bank's account identification, when the file gives one."""
    statement_ref: Mapped[str | None] = mapped_column(sa.Text)
    """Ciphertext of the bank's statement id (it often embeds the account number)."""
    period_from: Mapped[dt.date] = mapped_column(sa.Date)
    period_to: Mapped[dt.date] = mapped_column(sa.Date)
    opening_balance: Mapped[Money]
    closing_balance: Mapped[Money]
    line_count: Mapped[int]
    content: Mapped[str] = mapped_column(sa.Text)
    """Ciphertext of the original file, zlib-compressed then base64."""
    content_sha256: Mapped[str] = mapped_column(sa.String(64))
    content_bytes: Mapped[int]
    imported_by: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[CreatedAt]


class Reconciliation(Base):
    __tablename__ = "reconciliations"

    id: Mapped[intpk]
    statement_id: Mapped[int] = mapped_column(sa.ForeignKey("reconciliation_statements.id"), unique=True)
    account: Mapped[str] = mapped_column(sa.String(120))
    """The ledger account the statement is matched against."""
    status: Mapped[str] = mapped_column(sa.String(16), default="queued")
    phase: Mapped[str] = mapped_column(sa.String(16), default="queued")
    progress: Mapped[int] = mapped_column(sa.SmallInteger, default=0)
    error_code: Mapped[str | None] = mapped_column(sa.String(60))
    error_detail: Mapped[str | None] = mapped_column(sa.String(500))
    date_window_days: Mapped[int] = mapped_column(sa.SmallInteger)
    fuzzy_threshold: Mapped[int] = mapped_column(sa.SmallInteger)
    checkpoint_size: Mapped[int | None]
    checkpoint_root: Mapped[bytes | None] = mapped_column(sa.LargeBinary(32))
    checkpoint_note: Mapped[str | None] = mapped_column(sa.Text)
    ledger_opening: Mapped[int | None] = mapped_column(sa.BigInteger)
    ledger_closing: Mapped[int | None] = mapped_column(sa.BigInteger)
    ledger_at_checkpoint: Mapped[int | None] = mapped_column(sa.BigInteger)
    explained: Mapped[int | None] = mapped_column(sa.BigInteger)
    unexplained: Mapped[int | None] = mapped_column(sa.BigInteger)
    fully_explained: Mapped[bool | None]
    item_count: Mapped[int | None]
    stats: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    report_digest: Mapped[str | None] = mapped_column(sa.String(64))
    attestation_id: Mapped[int | None] = mapped_column(sa.ForeignKey("ledger_transactions.id"))
    created_by: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[CreatedAt]
    started_at: Mapped[Timestamp | None]
    finished_at: Mapped[Timestamp | None]

    __table_args__ = (
        sa.CheckConstraint(_one_of("status", STATUSES), name="status_known"),
        sa.CheckConstraint(_one_of("phase", PHASES), name="phase_known"),
        sa.CheckConstraint("progress BETWEEN 0 AND 100", name="progress_percent"),
        sa.Index("ix_reconciliations_status", "status"),
    )

    @property
    def public_id(self) -> str:
        """Return the reconciliation's public id, as leaves carry it."""
        return public_id(self.id)


def public_id(reconciliation_id: int) -> str:
    """Return the public id of reconciliation row ``reconciliation_id``."""
    return f"RC-{reconciliation_id:010d}"


class Total(Base):
    """How many report items a category holds, and the money in them."""

    __tablename__ = "reconciliation_totals"

    reconciliation_id: Mapped[int] = mapped_column(sa.ForeignKey("reconciliations.id"), primary_key=True)
    category: Mapped[str] = mapped_column(sa.String(20), primary_key=True)
    count: Mapped[int]
    bank_amount: Mapped[Money]
    ledger_amount: Mapped[Money]
    difference: Mapped[Money]


class Item(Base):
    """One conclusion of a report: a statement line, ledger transactions, or both."""

    __tablename__ = "reconciliation_items"

    reconciliation_id: Mapped[int] = mapped_column(
        sa.ForeignKey("reconciliations.id"), primary_key=True, autoincrement=False
    )
    position: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    """Order in the report: statement lines first (position = line index), then missing items."""
    category: Mapped[str] = mapped_column(sa.String(20))
    rule: Mapped[str | None] = mapped_column(sa.String(16))
    line_id: Mapped[str | None] = mapped_column(sa.String(100))
    booking_date: Mapped[dt.date | None] = mapped_column(sa.Date)
    value_date: Mapped[dt.date | None] = mapped_column(sa.Date)
    amount: Mapped[int | None] = mapped_column(sa.BigInteger)
    """The line's signed amount (positive into the account)."""
    reference: Mapped[str | None] = mapped_column(sa.String(200))
    source: Mapped[str | None] = mapped_column(sa.String(MAX_SOURCE))
    reversal: Mapped[bool | None]
    transactions: Mapped[str | None] = mapped_column(sa.Text)
    """The ledger transactions this item accounts for, space-separated public ids."""
    ledger_amount: Mapped[int | None] = mapped_column(sa.BigInteger)
    ledger_date: Mapped[dt.date | None] = mapped_column(sa.Date)
    ledger_reference: Mapped[str | None] = mapped_column(sa.String(100))
    related: Mapped[str | None] = mapped_column(sa.String(24))
    """The transaction a duplicate, a return or an unmatched line names."""
    score: Mapped[int | None] = mapped_column(sa.SmallInteger)
    difference: Mapped[Money]

    __table_args__ = (
        sa.CheckConstraint(_one_of("category", tuple(Category)), name="category_known"),
        sa.CheckConstraint(f"rule IS NULL OR {_one_of('rule', tuple(Rule))}", name="rule_known"),
        # Most items are matched; this index finds the others by category without touching them.
        sa.Index(
            "ix_reconciliation_items_open",
            "reconciliation_id",
            "category",
            "position",
            postgresql_where=sa.text("category <> 'matched'"),
            sqlite_where=sa.text("category <> 'matched'"),
        ),
    )


class TextBlock(Base):
    """The descriptions of lines ``block * TEXT_BLOCK`` onwards, encrypted together."""

    __tablename__ = "reconciliation_texts"

    reconciliation_id: Mapped[int] = mapped_column(
        sa.ForeignKey("reconciliations.id"), primary_key=True, autoincrement=False
    )
    block: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    descriptions: Mapped[str] = mapped_column(sa.Text)


class Decision(Base):
    """An auditor's decision on a report item; an item is decided at most once."""

    __tablename__ = "reconciliation_decisions"

    id: Mapped[intpk]
    reconciliation_id: Mapped[int] = mapped_column(BigId)
    position: Mapped[int] = mapped_column(BigId)
    action: Mapped[str] = mapped_column(sa.String(16))
    note: Mapped[str | None] = mapped_column(sa.String(500))
    reversal_id: Mapped[int | None] = mapped_column(sa.ForeignKey("ledger_transactions.id"))
    decided_by: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[CreatedAt]

    __table_args__ = (
        sa.ForeignKeyConstraint(
            ["reconciliation_id", "position"],
            ["reconciliation_items.reconciliation_id", "reconciliation_items.position"],
            name="fk_reconciliation_decisions_item",
        ),
        sa.UniqueConstraint("reconciliation_id", "position"),
        sa.CheckConstraint(_one_of("action", ACTIONS), name="action_known"),
    )

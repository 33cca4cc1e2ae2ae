"""Tables of the book (accounts, transactions, postings) and of the log (entries, nodes, checkpoints).

Transaction and posting rows never change once written. Posting queues each transaction in
``ledger_pending``; the sequencer moves it to ``ledger_entries`` (log index, transaction, leaf
hash) with plain inserts and deletes, never updates, and caches the hashes of complete subtrees
(level >= 1) in ``ledger_nodes``, so that appending a leaf and building any proof read O(log n)
rows. ``ledger_state`` is the single row the sequencer
locks; it holds the current tree size and root.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from chopay.db import Base, CreatedAt, Money, intpk
from payments.ledger.domain import MAX_BALANCE
from qr.schemes import MAX_AMOUNT


class Account(Base):
    __tablename__ = "ledger_accounts"

    id: Mapped[intpk]
    code: Mapped[str] = mapped_column(sa.String(120), unique=True)
    kind: Mapped[str] = mapped_column(sa.String(16))
    currency: Mapped[str] = mapped_column(sa.String(3), default="VND")
    allow_negative: Mapped[bool] = mapped_column(default=True)
    balance: Mapped[Money] = mapped_column(default=0)
    created_at: Mapped[CreatedAt]

    __table_args__ = (
        sa.CheckConstraint(
            "kind IN ('asset', 'liability', 'equity', 'income', 'expense')", name="kind_known"
        ),
        sa.CheckConstraint("allow_negative OR balance >= 0", name="balance_allowed"),
        sa.CheckConstraint(f"balance BETWEEN {-MAX_BALANCE} AND {MAX_BALANCE}", name="balance_bounded"),
    )


class Transaction(Base):
    __tablename__ = "ledger_transactions"

    id: Mapped[intpk]
    idempotency_key: Mapped[str] = mapped_column(sa.String(200), unique=True)
    content_hash: Mapped[str] = mapped_column(sa.String(64))
    kind: Mapped[str] = mapped_column(sa.String(40))
    memo: Mapped[str] = mapped_column(sa.String(500))
    occurred_at: Mapped[dt.datetime]
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", sa.JSON, default=dict)
    reverses_id: Mapped[int | None] = mapped_column(sa.ForeignKey("ledger_transactions.id"), unique=True)
    created_at: Mapped[CreatedAt]
    # The leaf's checked canonical content members, fixed at posting (see canonical.leaf_content).
    leaf_content: Mapped[str] = mapped_column(sa.Text)

    postings: Mapped[list[Posting]] = relationship(
        back_populates="transaction", order_by="Posting.seq", lazy="selectin"
    )
    entry: Mapped[Entry | None] = relationship(
        back_populates="transaction", primaryjoin="Transaction.id == foreign(Entry.transaction_id)"
    )


class Posting(Base):
    __tablename__ = "ledger_postings"

    id: Mapped[intpk]
    # (transaction_id, seq) is unique, and that index also serves lookups by transaction.
    transaction_id: Mapped[int] = mapped_column(sa.ForeignKey("ledger_transactions.id"))
    seq: Mapped[int] = mapped_column(sa.SmallInteger)
    account_id: Mapped[int] = mapped_column(sa.ForeignKey("ledger_accounts.id"))
    amount: Mapped[Money]

    transaction: Mapped[Transaction] = relationship(back_populates="postings")
    account: Mapped[Account] = relationship(lazy="joined")

    __table_args__ = (
        sa.CheckConstraint("amount <> 0", name="amount_nonzero"),
        sa.CheckConstraint(f"amount BETWEEN {-MAX_AMOUNT} AND {MAX_AMOUNT}", name="amount_bounded"),
        sa.UniqueConstraint("transaction_id", "seq"),
        sa.Index("ix_ledger_postings_account_tx", "account_id", "transaction_id"),
    )


class Pending(Base):
    """A committed transaction the sequencer has not put in the log yet."""

    __tablename__ = "ledger_pending"

    transaction_id: Mapped[int] = mapped_column(
        sa.ForeignKey("ledger_transactions.id"), primary_key=True, autoincrement=False
    )


class Entry(Base):
    """A log position: which transaction sits at index ``idx`` and the hash of its leaf."""

    __tablename__ = "ledger_entries"

    idx: Mapped[int] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=False
    )
    # No foreign key: checking one costs the sequencer more than everything else it writes per
    # leaf, and the audit already proves every entry against the transaction rows it names.
    transaction_id: Mapped[int] = mapped_column(unique=True)
    leaf_hash: Mapped[bytes] = mapped_column(sa.LargeBinary(32))

    transaction: Mapped[Transaction] = relationship(
        back_populates="entry", primaryjoin="foreign(Entry.transaction_id) == Transaction.id"
    )


class Node(Base):
    __tablename__ = "ledger_nodes"

    level: Mapped[int] = mapped_column(sa.SmallInteger, primary_key=True, autoincrement=False)
    idx: Mapped[int] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=False
    )
    hash: Mapped[bytes] = mapped_column(sa.LargeBinary(32))


class LogState(Base):
    __tablename__ = "ledger_state"

    id: Mapped[int] = mapped_column(sa.SmallInteger, primary_key=True, autoincrement=False)
    size: Mapped[int] = mapped_column(default=0)
    root: Mapped[bytes] = mapped_column(sa.LargeBinary(32))
    updated_at: Mapped[CreatedAt]


class Checkpoint(Base):
    __tablename__ = "ledger_checkpoints"

    id: Mapped[intpk]
    size: Mapped[int] = mapped_column(unique=True)
    root: Mapped[bytes] = mapped_column(sa.LargeBinary(32))
    note: Mapped[str] = mapped_column(sa.Text)
    key_name: Mapped[str] = mapped_column(sa.String(200))
    created_at: Mapped[CreatedAt]

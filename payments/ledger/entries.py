"""Log entries rebuilt from the book, and the JSON Lines export for auditors."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from payments.ledger import tree
from payments.ledger.canonical import build_leaf
from payments.ledger.domain import public_id
from payments.ledger.errors import CorruptEntry
from payments.ledger.export import interleave
from payments.ledger.models import Account, Entry, Posting, Transaction


@dataclass(frozen=True)
class EntryView:
    """A log entry: its leaf, its leaf hash and where it sits."""

    index: int
    leaf: dict[str, Any]
    leaf_hash: bytes


@dataclass(frozen=True)
class _Row:
    id: int
    key: str
    kind: str
    memo: str
    occurred_at: dt.datetime
    meta: dict[str, Any]
    reverses_id: int | None


def _rows_with_postings(session: Session, ids: Sequence[int]) -> list[tuple[_Row, list[tuple[str, int]]]]:
    """Load transactions and their postings (account code, amount) in posting order."""
    tx_rows = {
        r.id: _Row(r.id, r.idempotency_key, r.kind, r.memo, r.occurred_at, r.metadata, r.reverses_id)
        for r in session.execute(
            sa.select(
                Transaction.id,
                Transaction.idempotency_key,
                Transaction.kind,
                Transaction.memo,
                Transaction.occurred_at,
                Transaction.meta.label("metadata"),
                Transaction.reverses_id,
            ).where(Transaction.id.in_(ids))
        )
    }
    postings: dict[int, list[tuple[str, int]]] = {i: [] for i in ids}
    for tx_id, code, amount in session.execute(
        sa.select(Posting.transaction_id, Account.code, Posting.amount)
        .join(Account, Account.id == Posting.account_id)
        .where(Posting.transaction_id.in_(ids))
        .order_by(Posting.transaction_id, Posting.seq)
    ):
        postings[tx_id].append((code, amount))
    return [(tx_rows[i], postings[i]) for i in ids]


def leaf_for(row: _Row, postings: list[tuple[str, int]], index: int, prev: bytes) -> dict[str, Any]:
    """Return the canonical leaf of a transaction at ``index`` after the leaf hashed ``prev``."""
    try:
        return build_leaf(
            index=index,
            prev=prev,
            tx=public_id(row.id),
            key=row.key,
            kind=row.kind,
            memo=row.memo,
            occurred_at=row.occurred_at,
            postings=postings,
            metadata=row.meta,
            reverses=public_id(row.reverses_id) if row.reverses_id is not None else None,
        )
    except ValueError as exc:
        # The book enforces every leaf rule on the way in, so this means the rows were altered.
        raise CorruptEntry(f"Entry {index} no longer forms a valid leaf: {exc}", index=index) from None


def entries(session: Session, *, from_index: int = 0, limit: int = 100) -> list[EntryView]:
    """Return sequenced entries starting at ``from_index``, rebuilt from the book."""
    ids = list(
        session.execute(
            sa.select(Entry.transaction_id.label("id"), Entry.idx.label("log_index"), Entry.leaf_hash)
            .where(Entry.idx >= from_index)
            .order_by(Entry.idx)
            .limit(limit)
        )
    )
    if not ids:
        return []
    prev = tree.leaf_hash_at(session, ids[0].log_index - 1)
    out: list[EntryView] = []
    rows = {row.id: (row, postings) for row, postings in _rows_with_postings(session, [r.id for r in ids])}
    for r in ids:
        row, postings = rows[r.id]
        out.append(EntryView(r.log_index, leaf_for(row, postings, r.log_index, prev), r.leaf_hash))
        prev = r.leaf_hash
    return out


def walk(
    session: Session, *, from_index: int = 0, end: int | None = None, page: int = 2000
) -> Iterator[EntryView]:
    """Yield entries in index order from ``from_index`` up to ``end`` (the whole log when None)."""
    index = from_index
    while end is None or index < end:
        batch = entries(session, from_index=index, limit=page if end is None else min(page, end - index))
        if not batch:
            return
        yield from batch
        index = batch[-1].index + 1


def export_lines(session: Session, *, from_index: int = 0, page: int = 2000) -> Iterator[str]:
    """Yield the JSON Lines export up to the latest checkpoint.

    Entries sequenced after the latest checkpoint are left out: nothing signed covers them yet,
    so a verifier could not tell them from forgeries; the next export carries them.
    """
    checkpoints = [(cp.size, cp.note) for cp in tree.list_checkpoints(session, after=from_index, limit=10**9)]
    if not checkpoints:
        return
    found = walk(session, from_index=from_index, end=checkpoints[-1][0], page=page)
    yield from interleave(((e.index, e.leaf) for e in found), checkpoints)

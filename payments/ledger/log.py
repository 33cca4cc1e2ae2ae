"""The Merkle log over the book: sequencer, checkpoints, proofs, export and verification.

The sequencer is the only writer of the log. It locks ``ledger_state``, takes committed
transactions that have no log index yet (in id order), turns each into its canonical leaf
(chained to the previous leaf's hash), appends it to the compact range loaded from storage,
and stores the leaf hash on the transaction and every completed subtree hash in
``ledger_nodes``. Indexes therefore have no gaps and one order, however transactions commit.
Appending and proving read O(log n) stored hashes.

Checkpoints are C2SP tlog-checkpoints in signed notes, emitted when the log has grown.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from chopay.db import copy_rows, transaction, utcnow
from payments.ledger import merkle, note
from payments.ledger.canonical import assemble_leaf, build_leaf
from payments.ledger.domain import public_id
from payments.ledger.errors import CorruptEntry, EntryNotFound
from payments.ledger.models import Account, Checkpoint, Entry, LogState, Node, Pending, Posting, Transaction
from payments.ledger.verify import checkpoint_line, entry_line

GENESIS_PREV = bytes(32)
# Complete subtrees of 2**STORED_LEVEL leaves and more are stored; smaller ones are rebuilt from
# at most 8 leaf hashes when a proof needs them. This keeps the sequencer's writes near one row
# per leaf while proofs still read O(log n) rows.
STORED_LEVEL = 4
BATCH = 20_000
_CHUNK = 500


def _state(session: Session) -> LogState:
    """Lock and return the log state row, creating it on first use."""
    # populate_existing: another sequencer may have moved the log since this session last looked.
    state = session.get(LogState, 1, with_for_update=True, populate_existing=True)
    if state is None:
        session.add(LogState(id=1, size=0, root=merkle.root([]), updated_at=utcnow()))
        session.flush()
        state = session.get(LogState, 1, with_for_update=True, populate_existing=True)
        assert state is not None
    return state


def current_size(session: Session) -> int:
    """Return the number of sequenced entries."""
    size = session.connection().scalar(sa.select(LogState.size).where(LogState.id == 1))
    return int(size) if size is not None else 0


def fetch_nodes(session: Session, nodes: Iterable[merkle.Node]) -> dict[merkle.Node, bytes]:
    """Return subtree hashes: stored ones (level >= STORED_LEVEL) read, lower ones rebuilt.

    A node below ``STORED_LEVEL`` covers at most ``2**(STORED_LEVEL-1)`` leaves, so it is
    hashed from its leaf hashes. Everything comes back in one round trip: a UNION ALL of index
    lookups, one per level.
    """
    wanted = sorted(set(nodes))
    low = [(level, idx) for level, idx in wanted if level < STORED_LEVEL]
    by_level: dict[int, list[int]] = {}
    for level, idx in wanted:
        if level >= STORED_LEVEL:
            by_level.setdefault(level, []).append(idx)
    leaf_indexes = sorted({i for level, idx in low for i in range(idx << level, (idx + 1) << level)})
    upper = [(level, idx) for level, indexes in by_level.items() for idx in indexes]
    found = _read_hashes(session, leaf_indexes, upper)
    wanted_set = set(wanted)
    out = {node: h for node, h in found.items() if node in wanted_set}
    for level, idx in low:
        span = [found.get((0, i)) for i in range(idx << level, (idx + 1) << level)]
        if all(h is not None for h in span):
            out[(level, idx)] = merkle.root(cast(list[bytes], span))
    return out


def _read_hashes(
    session: Session, leaf_indexes: list[int], upper: list[merkle.Node]
) -> dict[merkle.Node, bytes]:
    """Read leaf hashes and stored node hashes in one round trip."""
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        # Constant SQL with array parameters: psycopg prepares it once, so the server does not
        # plan a statement shaped by each proof's number of nodes.
        rows = conn.execute(
            _READ_HASHES_PG,
            {
                "leaves": leaf_indexes,
                "levels": [n[0] for n in upper],
                "idxs": [n[1] for n in upper],
            },
        )
        return {(level, idx): h for level, idx, h in rows}
    found: dict[merkle.Node, bytes] = {}
    for i in range(0, len(leaf_indexes), _CHUNK):
        rows = conn.execute(
            sa.select(Entry.idx, Entry.leaf_hash).where(Entry.idx.in_(leaf_indexes[i : i + _CHUNK]))
        )
        found.update({(0, idx): h for idx, h in rows})
    for i in range(0, len(upper), _CHUNK):
        rows = conn.execute(
            sa.select(Node.level, Node.idx, Node.hash).where(
                sa.tuple_(Node.level, Node.idx).in_(upper[i : i + _CHUNK])
            )
        )
        found.update({(level, idx): h for level, idx, h in rows})
    return found


_READ_HASHES_PG = sa.text(
    "SELECT 0 AS level, e.idx, e.leaf_hash FROM ledger_entries AS e "
    "WHERE e.idx = ANY(CAST(:leaves AS bigint[])) "
    "UNION ALL "
    "SELECT n.level, n.idx, n.hash FROM ledger_nodes AS n "
    "JOIN unnest(CAST(:levels AS smallint[]), CAST(:idxs AS bigint[])) AS w(level, idx) "
    "ON n.level = w.level AND n.idx = w.idx"
)


def load_frontier(session: Session, size: int) -> merkle.CompactRange:
    """Rebuild the compact range of the first ``size`` entries from storage."""
    wanted = merkle.frontier_nodes(size)
    stored = fetch_nodes(session, wanted)
    return merkle.CompactRange(size, [stored[n] for n in wanted])


def root_at(session: Session, size: int) -> bytes:
    """Return the tree root after ``size`` entries."""
    return load_frontier(session, size).root()


def _leaf_hash_at(session: Session, index: int) -> bytes:
    if index < 0:
        return GENESIS_PREV
    found = session.scalar(sa.select(Entry.leaf_hash).where(Entry.idx == index))
    if found is None:
        raise EntryNotFound(f"No log entry {index}.")
    return found


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
        return _build(row, postings, index, prev)
    except ValueError as exc:
        # The book enforces every leaf rule on the way in, so this means the rows were altered.
        raise CorruptEntry(f"Entry {index} no longer forms a valid leaf: {exc}", index=index) from None


def _build(row: _Row, postings: list[tuple[str, int]], index: int, prev: bytes) -> dict[str, Any]:
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


def sequence(session: Session, *, batch: int = BATCH, limit: int | None = None) -> int:
    """Give log indexes to committed transactions that have none; return how many were added."""
    added = 0
    while limit is None or added < limit:
        take = batch if limit is None else min(batch, limit - added)
        with transaction(session):
            state = _state(session)
            # Core rows straight off the connection: no ORM loading for thousands of tuples.
            pending = (
                session.connection()
                .execute(
                    sa.select(Transaction.id, Transaction.leaf_content, Transaction.reverses_id)
                    .where(
                        Transaction.id.in_(
                            sa.select(Pending.transaction_id).order_by(Pending.transaction_id).limit(take)
                        )
                    )
                    .order_by(Transaction.id)
                )
                .all()
            )
            if not pending:
                break
            frontier = load_frontier(session, state.size)
            prev = _leaf_hash_at(session, state.size - 1)
            nodes: list[tuple[int, int, bytes]] = []
            # Rows stream to the database while the next leaves are hashed.
            with copy_rows(session, Entry, ("idx", "transaction_id", "leaf_hash")) as write:
                for tx_id, content, reverses_id in pending:
                    index = frontier.size
                    reverses = public_id(reverses_id) if reverses_id is not None else None
                    h = merkle.leaf_hash(assemble_leaf(index, prev, content, public_id(tx_id), reverses))
                    completed = frontier.append(h)
                    if len(completed) > STORED_LEVEL:
                        nodes.extend(completed[STORED_LEVEL:])
                    write((index, tx_id, h))
                    prev = h
            with copy_rows(session, Node, ("level", "idx", "hash")) as write:
                for node in nodes:
                    write(node)
            _dequeue(session, [row[0] for row in pending])
            state.size = frontier.size
            state.root = frontier.root()
            state.updated_at = utcnow()
        added += len(pending)
    return added


def _dequeue(session: Session, ids: list[int]) -> None:
    """Remove exactly the sequenced ids from the queue (others may have committed meanwhile)."""
    if session.get_bind().dialect.name == "postgresql":
        # One array parameter instead of thousands of bound values.
        session.execute(_DEQUEUE_PG, {"lo": min(ids), "hi": max(ids), "ids": ids})
    else:
        for i in range(0, len(ids), _CHUNK):
            session.execute(sa.delete(Pending).where(Pending.transaction_id.in_(ids[i : i + _CHUNK])))


_DEQUEUE_PG = sa.text(
    # The range keeps the plan an index range scan whatever the table statistics say; the array
    # keeps rows in that range that committed after the batch was read.
    "DELETE FROM ledger_pending AS p USING unnest(CAST(:ids AS bigint[])) AS d(id) "
    "WHERE p.transaction_id = d.id AND p.transaction_id BETWEEN :lo AND :hi"
)


def latest_checkpoint(session: Session) -> Checkpoint | None:
    """Return the newest checkpoint, if any."""
    return session.scalar(sa.select(Checkpoint).order_by(Checkpoint.size.desc()).limit(1))


def checkpoint(
    session: Session, signer: note.Signer, origin: str, *, min_interval: float = 0.0
) -> Checkpoint | None:
    """Sign a checkpoint of the current tree if it grew since the last one.

    Returns None when there is nothing new, or when the last checkpoint is younger than
    ``min_interval`` seconds (the caller tries again later).
    """
    with transaction(session):
        state = _state(session)
        last = latest_checkpoint(session)
        if state.size == 0 or (last is not None and last.size >= state.size):
            return None
        if last is not None and min_interval > 0:
            age = (utcnow() - last.created_at).total_seconds()
            if age < min_interval:
                return None
        body = note.Checkpoint(origin=origin, size=state.size, root=state.root)
        signed = note.sign_checkpoint(body, [signer])
        cp = Checkpoint(size=state.size, root=state.root, note=signed, key_name=signer.name)
        session.add(cp)
    return cp


def list_checkpoints(session: Session, *, after: int | None = None, limit: int = 100) -> list[Checkpoint]:
    """Return checkpoints in increasing size, after size ``after``."""
    stmt = sa.select(Checkpoint).order_by(Checkpoint.size).limit(limit)
    if after is not None:
        stmt = stmt.where(Checkpoint.size > after)
    return list(session.scalars(stmt))


def _resolve_size(session: Session, tree_size: int | None) -> int:
    size = current_size(session)
    if tree_size is None:
        last = latest_checkpoint(session)
        return last.size if last is not None else size
    if not 0 < tree_size <= size:
        raise EntryNotFound(
            f"Tree size {tree_size} is outside the log (1..{size}).", code="tree_size_invalid"
        )
    return tree_size


@dataclass(frozen=True)
class EntryView:
    """A log entry: its leaf, its leaf hash and where it sits."""

    index: int
    leaf: dict[str, Any]
    leaf_hash: bytes


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
    prev = _leaf_hash_at(session, ids[0].log_index - 1)
    out: list[EntryView] = []
    rows = {row.id: (row, postings) for row, postings in _rows_with_postings(session, [r.id for r in ids])}
    for r in ids:
        row, postings = rows[r.id]
        out.append(EntryView(r.log_index, leaf_for(row, postings, r.log_index, prev), r.leaf_hash))
        prev = r.leaf_hash
    return out


def inclusion(session: Session, index: int, tree_size: int | None = None) -> dict[str, Any]:
    """Return entry ``index`` and its inclusion proof in a tree (default: the last checkpoint's).

    The leaf is assembled from the content stored when the transaction was posted (the bytes
    that were hashed) rather than rebuilt from its rows, so a proof costs four small queries.
    """
    size = _resolve_size(session, tree_size)
    if not 0 <= index < size:
        raise EntryNotFound(f"Entry {index} is not in a tree of size {size}.")
    plan = merkle.inclusion_proof_nodes(index, size)
    frontier = merkle.frontier_nodes(size)
    around = [(0, index), (0, index - 1)] if index else [(0, index)]
    stored = fetch_nodes(session, [*merkle.plan_nodes(plan), *frontier, *around])
    row = session.execute(
        sa.select(Transaction.id, Transaction.leaf_content, Transaction.reverses_id)
        .join(Entry, Entry.transaction_id == Transaction.id)
        .where(Entry.idx == index)
    ).one()
    prev = stored[(0, index - 1)] if index else GENESIS_PREV
    reverses = public_id(row.reverses_id) if row.reverses_id is not None else None
    data = assemble_leaf(index, prev, row.leaf_content, public_id(row.id), reverses)
    if merkle.leaf_hash(data) != stored[(0, index)]:
        raise CorruptEntry(f"Entry {index} no longer matches its stored leaf hash.", index=index)
    return {
        "index": index,
        "tree_size": size,
        "leaf": json.loads(data),
        "leaf_hash": stored[(0, index)],
        "proof": merkle.proof_from_nodes(plan, stored),
        "root": merkle.fold_nodes([stored[n] for n in frontier]),
    }


def consistency(session: Session, first: int, second: int | None = None) -> dict[str, Any]:
    """Return the consistency proof between two tree sizes (second default: last checkpoint)."""
    size = _resolve_size(session, second)
    if not 0 < first <= size:
        raise EntryNotFound(
            f"No consistency proof from size {first} to size {size}.", code="tree_size_invalid"
        )
    plan = merkle.consistency_proof_nodes(first, size)
    f1, f2 = merkle.frontier_nodes(first), merkle.frontier_nodes(size)
    stored = fetch_nodes(session, [*merkle.plan_nodes(plan), *f1, *f2])
    return {
        "first": first,
        "second": size,
        "first_root": merkle.fold_nodes([stored[n] for n in f1]),
        "second_root": merkle.fold_nodes([stored[n] for n in f2]),
        "proof": merkle.proof_from_nodes(plan, stored),
    }


def export_lines(session: Session, *, from_index: int = 0, page: int = 2000) -> Iterator[str]:
    """Yield the JSON Lines export up to the latest checkpoint.

    Each checkpoint follows the entry that completes it. Entries sequenced after the latest
    checkpoint are left out: nothing signed covers them yet, so a verifier could not tell them
    from forgeries; the next export carries them.
    """
    checkpoints = [(cp.size, cp.note) for cp in list_checkpoints(session, after=from_index, limit=10**9)]
    if not checkpoints:
        return
    end = checkpoints[-1][0]
    cp_pos = 0
    index = from_index
    while index < end:
        batch = entries(session, from_index=index, limit=min(page, end - index))
        if not batch:
            break
        for e in batch:
            yield entry_line(e.index, e.leaf)
            while cp_pos < len(checkpoints) and checkpoints[cp_pos][0] == e.index + 1:
                yield checkpoint_line(checkpoints[cp_pos][1])
                cp_pos += 1
        index = batch[-1].index + 1

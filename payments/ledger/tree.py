"""The Merkle tree of the log as stored in the database: sizes, checkpoints, roots and proofs.

Leaf hashes live in ``ledger_entries`` and the hashes of complete subtrees of
``2**STORED_LEVEL`` leaves and more in ``ledger_nodes``; smaller subtrees are rebuilt from at
most 8 leaf hashes when a proof needs them. This keeps the sequencer's writes near one row per
leaf while proofs still read O(log n) rows, in one round trip.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from payments.ledger import merkle
from payments.ledger.canonical import GENESIS_PREV_HASH, assemble_leaf
from payments.ledger.domain import public_id
from payments.ledger.errors import CorruptEntry, EntryNotFound
from payments.ledger.models import Checkpoint, Entry, LogState, Node, Transaction

STORED_LEVEL = 4
_CHUNK = 500


def current_size(session: Session) -> int:
    """Return the number of sequenced entries."""
    size = session.connection().scalar(sa.select(LogState.size).where(LogState.id == 1))
    return int(size) if size is not None else 0


def latest_checkpoint(session: Session) -> Checkpoint | None:
    """Return the newest checkpoint, if any."""
    return session.scalar(sa.select(Checkpoint).order_by(Checkpoint.size.desc()).limit(1))


def list_checkpoints(session: Session, *, after: int | None = None, limit: int = 100) -> list[Checkpoint]:
    """Return checkpoints in increasing size, after size ``after``."""
    stmt = sa.select(Checkpoint).order_by(Checkpoint.size).limit(limit)
    if after is not None:
        stmt = stmt.where(Checkpoint.size > after)
    return list(session.scalars(stmt))


def fetch_nodes(session: Session, nodes: Iterable[merkle.Node]) -> dict[merkle.Node, bytes]:
    """Return subtree hashes: stored ones (level >= STORED_LEVEL) read, lower ones rebuilt.

    A node below ``STORED_LEVEL`` covers at most ``2**(STORED_LEVEL-1)`` leaves, so it is
    hashed from its leaf hashes. Everything comes back in one round trip: a UNION ALL of index
    lookups, one per level.
    """
    wanted = sorted(set(nodes))
    low = [(level, idx) for level, idx in wanted if level < STORED_LEVEL]
    upper = [(level, idx) for level, idx in wanted if level >= STORED_LEVEL]
    leaf_indexes = sorted({i for level, idx in low for i in range(idx << level, (idx + 1) << level)})
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
            {"leaves": leaf_indexes, "levels": [n[0] for n in upper], "idxs": [n[1] for n in upper]},
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


def leaf_hash_at(session: Session, index: int) -> bytes:
    """Return the stored leaf hash of entry ``index`` (the genesis ``prev`` for index -1)."""
    if index < 0:
        return GENESIS_PREV_HASH
    found = session.scalar(sa.select(Entry.leaf_hash).where(Entry.idx == index))
    if found is None:
        raise EntryNotFound(f"No log entry {index}.")
    return found


def resolve_size(session: Session, tree_size: int | None) -> int:
    """Return ``tree_size`` if the log has it, or the latest checkpoint's size when None."""
    size = current_size(session)
    if tree_size is None:
        last = latest_checkpoint(session)
        return last.size if last is not None else size
    if not 0 < tree_size <= size:
        raise EntryNotFound(
            f"Tree size {tree_size} is outside the log (1..{size}).", code="tree_size_invalid"
        )
    return tree_size


def inclusion(session: Session, index: int, tree_size: int | None = None) -> dict[str, Any]:
    """Return entry ``index`` and its inclusion proof in a tree (default: the last checkpoint's).

    The leaf is assembled from the content stored when the transaction was posted (the bytes
    that were hashed) rather than rebuilt from its rows, so a proof costs four small queries.
    """
    size = resolve_size(session, tree_size)
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
    prev = stored[(0, index - 1)] if index else GENESIS_PREV_HASH
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
    size = resolve_size(session, second)
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

"""The sequencer: the only writer of the log, and the signer of its checkpoints.

It locks ``ledger_state``, takes committed transactions that have no log index yet (in id
order), turns each into its canonical leaf (chained to the previous leaf's hash), appends it to
the compact range loaded from storage, and stores the leaf hash in ``ledger_entries`` and every
completed subtree hash in ``ledger_nodes``. Indexes therefore have no gaps and one order,
however transactions commit. Checkpoints are C2SP tlog-checkpoints in signed notes, signed when
the log has grown, at most once per ``CHOPAY_CHECKPOINT_INTERVAL``.

Like every service, these functions flush and leave the commit to the caller; the job in
:mod:`payments.ledger.jobs` commits each batch on its own, so that a long backlog never holds
the log lock (or SQLite's write lock) for long.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from chopay.db import copy_rows, utcnow
from payments.ledger import merkle, note, tree
from payments.ledger.canonical import assemble_leaf
from payments.ledger.domain import public_id
from payments.ledger.models import Checkpoint, Entry, LogState, Node, Pending, Transaction

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


def sequence(session: Session, *, batch: int = BATCH, limit: int | None = None) -> int:
    """Give log indexes to committed transactions that have none; return how many were added.

    It appends at most ``limit`` entries (all of them when None), ``batch`` at a time.
    """
    added = 0
    while limit is None or added < limit:
        take = batch if limit is None else min(batch, limit - added)
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
        frontier = tree.load_frontier(session, state.size)
        prev = tree.leaf_hash_at(session, state.size - 1)
        nodes: list[tuple[int, int, bytes]] = []
        # Rows stream to the database while the next leaves are hashed.
        with copy_rows(session, Entry, ("idx", "transaction_id", "leaf_hash")) as write:
            for tx_id, content, reverses_id in pending:
                index = frontier.size
                reverses = public_id(reverses_id) if reverses_id is not None else None
                h = merkle.leaf_hash(assemble_leaf(index, prev, content, public_id(tx_id), reverses))
                completed = frontier.append(h)
                if len(completed) > tree.STORED_LEVEL:
                    nodes.extend(completed[tree.STORED_LEVEL :])
                write((index, tx_id, h))
                prev = h
        with copy_rows(session, Node, ("level", "idx", "hash")) as write:
            for node in nodes:
                write(node)
        _dequeue(session, [row[0] for row in pending])
        state.size = frontier.size
        state.root = frontier.root()
        state.updated_at = utcnow()
        session.flush()
        added += len(pending)
        if len(pending) < take:
            break
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


def checkpoint(
    session: Session, signer: note.Signer, origin: str, *, min_interval: float = 0.0
) -> Checkpoint | None:
    """Sign a checkpoint of the current tree if it grew since the last one.

    Returns None when there is nothing new, or when the last checkpoint is younger than
    ``min_interval`` seconds (the sealing timer tries again once it is due).
    """
    state = _state(session)
    last = tree.latest_checkpoint(session)
    if state.size == 0 or (last is not None and last.size >= state.size):
        return None
    if last is not None and min_interval > 0 and _age(last) < min_interval:
        return None
    body = note.Checkpoint(origin=origin, size=state.size, root=state.root)
    signed = note.sign_checkpoint(body, [signer])
    cp = Checkpoint(size=state.size, root=state.root, note=signed, key_name=signer.name)
    session.add(cp)
    session.flush()
    return cp


def _age(cp: Checkpoint) -> float:
    return (utcnow() - cp.created_at).total_seconds()


@dataclass(frozen=True)
class Backlog:
    """What the log still owes: committed but unsequenced, and sequenced but unsealed entries."""

    pending: int
    unsealed: int
    checkpoint_age: float | None

    def due(self, interval: float) -> bool:
        """Tell whether a sequencer run now would sequence, or sign, something."""
        if self.pending:
            return True
        return self.unsealed > 0 and (self.checkpoint_age is None or self.checkpoint_age >= interval)


def backlog(session: Session) -> Backlog:
    """Read the backlog in one cheap query, without taking any lock."""
    row = session.execute(
        sa.select(
            sa.select(sa.func.count())
            .select_from(sa.select(Pending.transaction_id).limit(1).subquery())
            .scalar_subquery(),
            sa.select(LogState.size).where(LogState.id == 1).scalar_subquery(),
            sa.select(sa.func.max(Checkpoint.size)).scalar_subquery(),
            sa.select(sa.func.max(Checkpoint.created_at)).scalar_subquery(),
        )
    ).one()
    pending, size, sealed, sealed_at = row
    if isinstance(sealed_at, str):  # SQLite returns aggregates of timestamps as text
        sealed_at = dt.datetime.fromisoformat(sealed_at)
    if sealed_at is not None and sealed_at.tzinfo is None:
        sealed_at = sealed_at.replace(tzinfo=dt.UTC)
    age = (utcnow() - sealed_at).total_seconds() if sealed_at is not None else None
    return Backlog(int(pending or 0), int(size or 0) - int(sealed or 0), age)

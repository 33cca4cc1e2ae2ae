"""The database side of paying a batch: claim items, record outcomes with their ledger posting.

These are the steps of the exactly-once protocol (``disbursement.execution`` drives them; each
step is the caller's unit of work, and nothing here talks to a rail):

1. :func:`claim` takes up to a chunk of a range's items, **committed before any rail call**:
   pending items become ``sending`` with ``attempts + 1`` and a lease; ``sending`` items whose
   lease has expired (a lost answer, a crash, a transient error after its backoff) are
   re-leased and come back marked ``unknown``: the caller must ask the rail for their status
   before anything is sent again. ``SELECT ... FOR UPDATE SKIP LOCKED`` lets any number of
   workers claim side by side.
2. :func:`record` writes what the rail answered, for a whole chunk in one transaction: paid
   items, their bank transaction ids, receipt codes and one ledger transaction each (debit the
   program's benefits, credit its budget, keyed ``payout:<reference>``), failed items with
   their reason code and the rail's own code, and the new lease of items still unknown. It
   locks the items first and skips any that another worker has recorded meanwhile, so an
   outcome is never written twice. Insufficient funds puts the items back to ``pending``
   (nothing was executed) and pauses the batch with an alert.

   The budget is checked on both sides of the rail. :func:`claim` sends no new item that the
   program's budget, less what is already in flight, cannot cover: it claims what fits and
   pauses the batch with a ``budget_insufficient`` alert (the budget can shrink after approval,
   when a funding is reversed). If the ledger still refuses the postings of items the rail has
   paid (the budget shrank while they were in flight), :func:`record` holds them: they stay
   ``sending`` for :data:`REFUSED_HOLD` seconds, are asked again and posted once the budget
   covers them, and the batch is paused with the same alert. A paid item is never marked
   failed, never re-sent and never recorded without its posting.
3. :func:`finish` closes a batch whose items are all final: ``completed`` or
   ``completed_with_failures``, with the size of the checkpoint that seals its postings.

Statements are per chunk, not per item: one select and one update to claim, one update to
record, and the ledger's batched post.
"""

from __future__ import annotations

import datetime as dt
import functools
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Concatenate, ParamSpec, TypeVar, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from chopay.db import utcnow
from disbursement import domain
from disbursement.domain import BatchStatus, ItemStatus
from disbursement.models import Batch, PayoutItem, Program
from disbursement.services import validation
from payments.ledger import services as ledger
from payments.ledger.domain import Posting, TransactionSpec
from payments.ledger.errors import InsufficientBalance
from payments.rails.base import Outcome, TransferResult

PAYOUT_KIND = "payout"
_UNFINISHED = (ItemStatus.PENDING.value, ItemStatus.SENDING.value)
_ACTIVE = (BatchStatus.RUNNING.value, BatchStatus.PAUSED.value, BatchStatus.CANCELLED.value)

REFUSED_HOLD = 60.0
"""Seconds a paid item whose posting the ledger refused waits before it is asked and posted again."""


@dataclass(frozen=True)
class Claimed:
    """An item taken for one step: what to send, and whether its last attempt is unknown."""

    id: int
    reference: str
    amount: int
    bin: str
    account_number: str  # ciphertext (ITEM_ACCOUNT)
    attempts: int
    unknown: bool
    rail_code: str | None
    retry_of: str | None
    chunk_ref: str | None  # the rail reference of the chunk it was (or is about to be) sent in


@dataclass(frozen=True)
class BatchState:
    """What a step needs to know of its batch."""

    id: int
    status: str
    program: str
    period: str


def ledger_key(reference: str) -> str:
    """Return the ledger idempotency key of the payout of ``reference``."""
    return f"payout:{reference}"


def batch_state(session: Session, batch_id: int) -> BatchState | None:
    """Return the batch's status, program code and period, or None if there is no such batch."""
    row = session.execute(
        sa.select(Batch.id, Batch.status, Program.code, Batch.period)
        .join(Program, Program.id == Batch.program_id)
        .where(Batch.id == batch_id)
    ).one_or_none()
    return BatchState(*row) if row is not None else None


def _postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


IDLE_LIMIT = "10s"
"""How long PostgreSQL lets a claiming or recording transaction sit idle before ending its session.

These transactions are a few statements and never wait on the rail, so an idle one has lost its
process: a worker killed with SIGKILL whose socket lives on in a forked child (rq's scheduler)
would otherwise keep the claimed rows locked, and every other worker would skip them forever.
"""


P = ParamSpec("P")
R = TypeVar("R")


def _idle_bounded(step: Callable[Concatenate[Session, P], R]) -> Callable[Concatenate[Session, P], R]:
    """Run ``step`` with IDLE_LIMIT in force, then restore the default for the rest of the transaction.

    (The caller's transaction may go on: a test's, joined through savepoints, idles for longer.)
    """

    def bounded(session: Session, /, *args: P.args, **kwargs: P.kwargs) -> R:
        if not _postgres(session):
            return step(session, *args, **kwargs)
        session.execute(sa.text(f"SET LOCAL idle_in_transaction_session_timeout = '{IDLE_LIMIT}'"))
        result = step(session, *args, **kwargs)
        session.execute(sa.text("SET LOCAL idle_in_transaction_session_timeout TO DEFAULT"))
        return result

    functools.update_wrapper(bounded, step)
    return bounded


@_idle_bounded
def claim(
    session: Session,
    batch_id: int,
    first_id: int,
    last_id: int,
    *,
    lease: float,
    limit: int,
    unknown_only: bool = False,
    now: dt.datetime | None = None,
) -> list[Claimed]:
    """Take the range's claimable items (pending ones unless ``unknown_only``) under a lease."""
    now = now or utcnow()
    expired = sa.and_(PayoutItem.status == ItemStatus.SENDING, PayoutItem.lease_until < now)
    ready = expired if unknown_only else sa.or_(PayoutItem.status == ItemStatus.PENDING, expired)
    stmt = (
        sa.select(
            PayoutItem.id,
            PayoutItem.reference,
            PayoutItem.amount,
            PayoutItem.bin,
            PayoutItem.account_number,
            PayoutItem.attempts,
            PayoutItem.status,
            PayoutItem.rail_code,
            PayoutItem.retry_of_id,
            PayoutItem.chunk_ref,
        )
        .where(PayoutItem.batch_id == batch_id, PayoutItem.id.between(first_id, last_id), ready)
        .order_by(PayoutItem.id)
        .limit(limit)
    )
    if _postgres(session):
        stmt = stmt.with_for_update(skip_locked=True)
    rows = session.execute(stmt).all()
    pending = [r for r in rows if r.status == ItemStatus.PENDING]
    if pending:
        covered = _affordable(session, batch_id, [r.amount for r in pending], now)
        if covered < len(pending):
            left = {r.id for r in pending[covered:]}
            rows = [r for r in rows if r.id not in left]
    if not rows:
        return []
    fresh = [r.id for r in rows if r.status == ItemStatus.PENDING]
    unknown = [r.id for r in rows if r.status != ItemStatus.PENDING]
    until = now + dt.timedelta(seconds=lease)
    fresh_chunk = domain.chunk_reference(r.reference for r in rows if r.status == ItemStatus.PENDING)
    if fresh:
        session.execute(
            sa.update(PayoutItem)
            .where(PayoutItem.id.in_(fresh))
            .values(
                status=ItemStatus.SENDING.value,
                attempts=PayoutItem.attempts + 1,
                lease_until=until,
                last_attempt_at=now,
                chunk_ref=fresh_chunk,
                updated_at=now,
            )
        )
    if unknown:
        session.execute(
            sa.update(PayoutItem).where(PayoutItem.id.in_(unknown)).values(lease_until=until, updated_at=now)
        )
    firsts = _first_references(session, {r.retry_of_id for r in rows if r.retry_of_id is not None})
    return [
        Claimed(
            id=r.id,
            reference=r.reference,
            amount=r.amount,
            bin=r.bin,
            account_number=r.account_number,
            attempts=r.attempts + (1 if r.status == ItemStatus.PENDING else 0),
            unknown=r.status != ItemStatus.PENDING,
            rail_code=r.rail_code,
            retry_of=firsts.get(r.retry_of_id) if r.retry_of_id is not None else None,
            chunk_ref=fresh_chunk if r.status == ItemStatus.PENDING else r.chunk_ref,
        )
        for r in rows
    ]


def _affordable(session: Session, batch_id: int, amounts: list[int], now: dt.datetime) -> int:
    """Return how many of ``amounts`` (in order) the budget covers beside what is in flight.

    If not all, pause the batch with a ``budget_insufficient`` alert. The program's row is
    locked first on PostgreSQL, so that workers claiming side by side check one after another
    (SQLite writers are serialised already).
    """
    program_id, code = session.execute(
        sa.select(Program.id, Program.code)
        .join(Batch, Batch.program_id == Program.id)
        .where(Batch.id == batch_id)
    ).one()
    if _postgres(session):
        session.execute(sa.select(Program.id).where(Program.id == program_id).with_for_update())
    active = sa.select(Batch.id).where(Batch.program_id == program_id, Batch.status.in_(_ACTIVE))
    in_flight = int(
        session.scalar(
            sa.select(sa.func.coalesce(sa.func.sum(PayoutItem.amount), 0)).where(
                PayoutItem.batch_id.in_(active), PayoutItem.status == ItemStatus.SENDING
            )
        )
        or 0
    )
    available = ledger.balance(session, domain.budget_account(code)) - in_flight
    covered, total = 0, 0
    for amount in amounts:
        if total + amount > available:
            break
        total += amount
        covered += 1
    if covered < len(amounts):
        _touch(session, batch_id, now, _budget_alert(code, available, in_flight, amounts[covered], now))
    return covered


def _budget_alert(code: str, available: int, in_flight: int, needed: int, now: dt.datetime) -> dict[str, Any]:
    return {
        "code": "budget_insufficient",
        "message": (
            f"The budget of {code} cannot cover the next transfers: {max(available, 0):,} dong are free "
            f"beside {in_flight:,} in flight, and the next needs {needed:,}. Fund the program and resume "
            "the batch."
        ),
        "at": now.isoformat(),
    }


def _first_references(session: Session, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = session.execute(sa.select(PayoutItem.id, PayoutItem.reference).where(PayoutItem.id.in_(ids)))
    return {i: ref for i, ref in rows if ref is not None}


def bump_attempts(
    session: Session, items: Sequence[Claimed], *, lease: float, now: dt.datetime | None = None
) -> str:
    """Count a new send of items the rail has no trace of, under a fresh lease; return its chunk reference."""
    now = now or utcnow()
    reference = domain.chunk_reference(c.reference for c in items)
    session.execute(
        sa.update(PayoutItem)
        .where(PayoutItem.id.in_([c.id for c in items]), PayoutItem.status == ItemStatus.SENDING)
        .values(
            attempts=PayoutItem.attempts + 1,
            lease_until=now + dt.timedelta(seconds=lease),
            last_attempt_at=now,
            chunk_ref=reference,
            updated_at=now,
        )
    )
    return reference


@dataclass
class Recorded:
    """What one :func:`record` wrote."""

    paid: int = 0
    failed: int = 0
    unknown: int = 0
    requeued: int = 0
    skipped: int = 0
    held: int = 0  # paid by the rail, posting refused by the ledger: kept sending


_ROW_KEYS = (
    "id",
    "status",
    "bank_txn_id",
    "reason_code",
    "rail_code",
    "receipt_code",
    "ledger_transaction_id",
    "paid_at",
    "failed_at",
    "entitled",
    "lease_until",
)


@_idle_bounded
def record(
    session: Session,
    batch: BatchState,
    outcomes: Iterable[tuple[Claimed, TransferResult]],
    *,
    backoff: float,
    alert: dict[str, Any] | None = None,
    now: dt.datetime | None = None,
    rng: random.Random | None = None,
) -> Recorded:
    """Write the outcomes of one step, with the ledger postings of the paid items, at once.

    ``unknown`` results (pending, transient, a lost answer) keep their item ``sending`` with a
    new lease: a short poll for ``pending``, an exponential backoff with jitter for
    ``transient``. ``insufficient_funds`` puts the item back to ``pending`` and pauses the
    batch with ``alert``.
    """
    now = now or utcnow()
    draw = (rng or random).random
    pairs = list(outcomes)
    done = Recorded()
    if not pairs:
        return done
    still = _lock_sending(session, [c.id for c, _ in pairs])
    done.skipped = len(pairs) - sum(c.id in still for c, _ in pairs)
    pairs = [(c, r) for c, r in pairs if c.id in still]
    rows: list[dict[str, Any]] = []
    paid: list[tuple[Claimed, TransferResult, str]] = []
    requeue: list[int] = []
    for claimed, result in pairs:
        row = dict.fromkeys(_ROW_KEYS)
        row.update(id=claimed.id, status=ItemStatus.SENDING.value, entitled=True, rail_code=claimed.rail_code)
        outcome = result.outcome
        if outcome is Outcome.SUCCEEDED:
            receipt = domain.new_receipt_code()
            paid.append((claimed, result, receipt))
            row.update(
                status=ItemStatus.PAID.value,
                bank_txn_id=result.bank_txn_id,
                receipt_code=receipt,
                paid_at=now,
                rail_code=result.raw_code,
            )
            done.paid += 1
        elif outcome in (Outcome.FAILED, Outcome.RETURNED):
            # A failure without a rail reason is one of fail_unreachable: the rail never saw it.
            reason = (
                domain.RETURNED if outcome is Outcome.RETURNED else (result.reason or domain.RAIL_UNAVAILABLE)
            )
            row.update(
                status=ItemStatus.FAILED.value,
                reason_code=str(reason),
                rail_code=result.raw_code or result.raw_state,
                bank_txn_id=result.bank_txn_id,
                failed_at=now,
                entitled=False,
            )
            done.failed += 1
        elif outcome is Outcome.INSUFFICIENT_FUNDS:
            requeue.append(claimed.id)
            continue
        else:
            delay = (
                domain.backoff(claimed.attempts, backoff, draw())
                if outcome is Outcome.TRANSIENT
                else domain.backoff(1, backoff, draw())
            )
            row["lease_until"] = now + dt.timedelta(seconds=delay)
            if outcome is Outcome.TRANSIENT:
                row["rail_code"] = result.raw_code or "transient"
            done.unknown += 1
        rows.append(row)
    if paid:
        try:
            ids = ledger.post_many(session, [_posting(batch, c, r, receipt, now) for c, r, receipt in paid])
        except InsufficientBalance:
            # The rail paid, the budget no longer covers it (a posting refused writes nothing):
            # hold the items as sent, to be asked again and posted once the program is funded.
            alert = _held(rows, paid, batch.program, now)
            done.held, done.paid = len(paid), done.paid - len(paid)
        else:
            by_item = {c.id: tx for (c, _, _), tx in zip(paid, ids, strict=True)}
            for row in rows:
                if row["id"] in by_item:
                    row["ledger_transaction_id"] = by_item[row["id"]]
    _write(session, rows, now)
    if requeue:
        session.execute(
            sa.update(PayoutItem)
            .where(PayoutItem.id.in_(requeue))
            .values(status=ItemStatus.PENDING.value, lease_until=None, updated_at=now)
        )
        done.requeued = len(requeue)
    _touch(session, batch.id, now, alert if requeue or done.held else None)
    return done


def _held(
    rows: list[dict[str, Any]],
    paid: list[tuple[Claimed, TransferResult, str]],
    program: str,
    now: dt.datetime,
) -> dict[str, Any]:
    """Turn the rows of paid items back into ``sending`` ones on hold; return the batch's alert."""
    held = {c.id for c, _, _ in paid}
    for row in rows:
        if row["id"] in held:
            row.update(
                status=ItemStatus.SENDING.value,
                receipt_code=None,
                paid_at=None,
                lease_until=now + dt.timedelta(seconds=REFUSED_HOLD),
            )
    amount = sum(c.amount for c, _, _ in paid)
    return {
        "code": "budget_insufficient",
        "message": (
            f"The rail paid {len(paid):,} transfers ({amount:,} dong) that the budget of {program} no longer "
            "covers, so the ledger refused their postings. They are held, and posted as soon as the "
            "program is funded. Fund the program and resume the batch."
        ),
        "at": now.isoformat(),
    }


def fail_unreachable(claimed: Claimed) -> TransferResult:
    """Return the final outcome of an item that ran out of attempts and that the rail never saw."""
    return TransferResult(
        claimed.reference,
        Outcome.FAILED,
        raw_code=claimed.rail_code,
        message="the payout rail answered only with transient errors",
    )


def _posting(
    batch: BatchState, claimed: Claimed, result: TransferResult, receipt: str, now: dt.datetime
) -> TransactionSpec:
    metadata: dict[str, Any] = {
        "batch": batch.id,
        "payout_ref": claimed.reference,
        "period": batch.period,
        "program": batch.program,
        "receipt": receipt,
    }
    if result.bank_txn_id:
        metadata["bank_txn_id"] = result.bank_txn_id
    if claimed.retry_of:
        metadata["retry_of"] = claimed.retry_of
    return TransactionSpec(
        idempotency_key=ledger_key(claimed.reference),
        kind=PAYOUT_KIND,
        memo=f"Payout {batch.program} {batch.period}",
        postings=[
            Posting(domain.benefits_account(batch.program), claimed.amount),
            Posting(domain.budget_account(batch.program), -claimed.amount),
        ],
        occurred_at=now,
        metadata=metadata,
    )


def _lock_sending(session: Session, ids: list[int]) -> set[int]:
    """Lock the items that are still ``sending``; return their ids."""
    stmt = sa.select(PayoutItem.id).where(PayoutItem.id.in_(ids), PayoutItem.status == ItemStatus.SENDING)
    if _postgres(session):
        stmt = stmt.with_for_update()
    return set(session.scalars(stmt))


_UPDATE_PG = sa.text(
    """
    UPDATE payout_items AS i SET status = d.status, bank_txn_id = d.bank_txn_id,
        reason_code = d.reason_code, rail_code = d.rail_code, receipt_code = d.receipt_code,
        ledger_transaction_id = d.tx, paid_at = d.paid_at, failed_at = d.failed_at,
        entitled = d.entitled, lease_until = d.lease_until, updated_at = :now
    FROM unnest(CAST(:id AS bigint[]), CAST(:status AS text[]), CAST(:bank_txn_id AS text[]),
                CAST(:reason_code AS text[]), CAST(:rail_code AS text[]), CAST(:receipt_code AS text[]),
                CAST(:tx AS bigint[]), CAST(:paid_at AS timestamptz[]), CAST(:failed_at AS timestamptz[]),
                CAST(:entitled AS boolean[]), CAST(:lease_until AS timestamptz[]))
        AS d(id, status, bank_txn_id, reason_code, rail_code, receipt_code, tx, paid_at, failed_at,
             entitled, lease_until)
    WHERE i.id = d.id
    """
)


def _write(session: Session, rows: list[dict[str, Any]], now: dt.datetime) -> None:
    if not rows:
        return
    if _postgres(session):
        params = {k: [r[k] for r in rows] for k in _ROW_KEYS}
        params["tx"] = params.pop("ledger_transaction_id")
        session.execute(_UPDATE_PG, {**params, "now": now})
        return
    update_items(session, [r | {"updated_at": now} for r in rows])


def update_items(session: Session, rows: list[dict[str, Any]]) -> None:
    """Update items by id, each row with its own values (one executemany)."""
    if not rows:
        return
    table = cast(sa.Table, PayoutItem.__table__)
    session.execute(
        sa.update(table)
        .where(table.c.id == sa.bindparam("b_id"))
        .values({k: sa.bindparam(f"b_{k}") for k in rows[0] if k != "id"}),
        [{f"b_{k}": v for k, v in r.items()} for r in rows],
    )


def _touch(session: Session, batch_id: int, now: dt.datetime, alert: dict[str, Any] | None) -> None:
    """Note progress on the batch; an alert (insufficient funds) also pauses it."""
    values: dict[str, Any] = {"progress_at": now}
    if alert is not None:
        batch = session.get(Batch, batch_id, with_for_update=True)
        assert batch is not None
        if batch.status == BatchStatus.RUNNING:
            batch.status = domain.batch_transition(batch.status, BatchStatus.PAUSED)
            batch.alert = alert
        elif batch.status == BatchStatus.CANCELLED:
            validation.release_pending(session, batch_id)
        batch.progress_at = batch.updated_at = now
        session.flush()
        return
    session.execute(sa.update(Batch).where(Batch.id == batch_id).values(values))


# ---------------------------------------------------------------------------------------------
# Ranges, progress and the end of a batch


def ranges(
    session: Session, batch_id: int, size: int, *, expired_only: bool = False, now: dt.datetime | None = None
) -> list[tuple[int, int]]:
    """Return (first id, last id) of consecutive runs of ``size`` unfinished items of the batch."""
    now = now or utcnow()
    where = [PayoutItem.batch_id == batch_id]
    if expired_only:
        where += [PayoutItem.status == ItemStatus.SENDING, PayoutItem.lease_until < now]
    else:
        where.append(PayoutItem.status.in_(_UNFINISHED))
    numbered = (
        sa.select(
            PayoutItem.id.label("id"),
            ((sa.func.row_number().over(order_by=PayoutItem.id) - 1) // size).label("part"),
        )
        .where(*where)
        .subquery()
    )
    rows = session.execute(
        sa.select(sa.func.min(numbered.c.id), sa.func.max(numbered.c.id))
        .group_by(numbered.c.part)
        .order_by(numbered.c.part)
    )
    return [(int(lo), int(hi)) for lo, hi in rows]


def next_due(
    session: Session, batch_id: int, first_id: int, last_id: int, *, sending_only: bool
) -> dt.datetime | None:
    """Return when the range next has work (now for pending items), or None when it has none."""
    in_range = [PayoutItem.batch_id == batch_id, PayoutItem.id.between(first_id, last_id)]
    if not sending_only:
        pending = session.scalar(
            sa.select(PayoutItem.id).where(*in_range, PayoutItem.status == ItemStatus.PENDING).limit(1)
        )
        if pending is not None:
            return utcnow()
    due: dt.datetime | None = session.scalar(
        sa.select(sa.func.min(PayoutItem.lease_until)).where(
            *in_range, PayoutItem.status == ItemStatus.SENDING
        )
    )
    return due


def unfinished(session: Session, batch_id: int) -> bool:
    """Tell whether any item of the batch is still pending or sending."""
    found = session.scalar(
        sa.select(PayoutItem.id)
        .where(PayoutItem.batch_id == batch_id, PayoutItem.status.in_(_UNFINISHED))
        .limit(1)
    )
    return found is not None


def open_failures(session: Session, batch_id: int) -> int:
    """Count failed items that no later re-send of the same payment has replaced."""
    later = sa.orm.aliased(PayoutItem)
    return int(
        session.scalar(
            sa.select(sa.func.count())
            .select_from(PayoutItem)
            .where(
                PayoutItem.batch_id == batch_id,
                PayoutItem.status == ItemStatus.FAILED,
                ~sa.exists().where(
                    later.batch_id == batch_id,
                    later.status.in_([*_UNFINISHED, ItemStatus.PAID.value]),
                    later.retry_of_id == sa.func.coalesce(PayoutItem.retry_of_id, PayoutItem.id),
                ),
            )
        )
        or 0
    )


def start(session: Session, batch_id: int) -> Batch | None:
    """Move an approved batch to running; return it if it is running now (None otherwise)."""
    batch = session.get(Batch, batch_id, with_for_update=True)
    if batch is None:
        return None
    if batch.status == BatchStatus.APPROVED:
        batch.status = domain.batch_transition(batch.status, BatchStatus.RUNNING)
        batch.started_at = batch.progress_at = batch.updated_at = utcnow()
        session.flush()
    return batch if batch.status == BatchStatus.RUNNING else None


def finish(session: Session, batch_id: int, tree_size: int | None) -> Batch | None:
    """Close a batch whose items are all final; return it, or None if it is not done yet."""
    batch = session.get(Batch, batch_id, with_for_update=True)
    if batch is None or batch.status not in _ACTIVE or batch.finished_at is not None:
        return None
    if batch.status == BatchStatus.PAUSED or unfinished(session, batch_id):
        return None
    if batch.status == BatchStatus.RUNNING:
        target = (
            BatchStatus.COMPLETED_WITH_FAILURES if open_failures(session, batch_id) else BatchStatus.COMPLETED
        )
        batch.status = domain.batch_transition(batch.status, target)
    batch.finished_at = batch.updated_at = utcnow()
    batch.tree_size = tree_size
    session.flush()
    return batch


def active_batches(session: Session) -> list[tuple[int, str, dt.datetime | None, dt.datetime | None]]:
    """Return (id, status, progress_at, finished_at) of every batch that execution may still touch."""
    rows = session.execute(
        sa.select(Batch.id, Batch.status, Batch.progress_at, Batch.finished_at).where(
            sa.or_(
                Batch.status.in_([BatchStatus.APPROVED.value, BatchStatus.RUNNING.value]),
                sa.and_(
                    Batch.status.in_([BatchStatus.PAUSED.value, BatchStatus.CANCELLED.value]),
                    Batch.started_at.is_not(None),
                    Batch.finished_at.is_(None),
                ),
            )
        )
    )
    return [tuple(r) for r in rows]  # type: ignore[misc]

"""Paying an approved batch: rq jobs that send its chunks to the payout rail, exactly once.

Approval enqueues :func:`start_batch` on the ``payouts`` queue. It moves the batch to
``running`` and enqueues one :func:`send_chunk` per run of ``CHOPAY_PAYOUT_CHUNK`` items (by
id), which any number of ``chopay worker`` processes share. A chunk job loops over its range:

1. **claim** (committed before any rail call): pending items become ``sending`` under a lease;
   items whose earlier attempt is unknown come back with an expired lease;
2. **resolve** the unknown ones with the rail's status of their reference (one list call per
   chunk they were sent in, whose reference each item keeps; one status call per reference
   the chunk's answer does not show) before anything is sent again; only a reference the
   rail has never seen is sent again (and the rail is idempotent on it anyway);
3. **send** the rest as one batch payout whose reference is derived from the set of item
   references, so that a re-send of the same set replays instead of failing;
4. **record** each definite outcome together with its ledger posting, in one transaction per
   chunk (``disbursement.services.payouts.record``); an unknown one stays ``sending`` with a
   new lease: a short poll for ``PROCESSING``, exponential backoff with jitter after a
   transient error, until ``CHOPAY_PAYOUT_MAX_ATTEMPTS`` sends, after which an item the rail
   has no trace of fails ``rail_unavailable``;
5. waits for the range's next due lease, or returns and leaves it to the sweep.

Insufficient funds at the source puts the chunk's items back to ``pending`` (nothing was
executed) and pauses the batch with an alert; ``POST .../resume`` re-enqueues it. At most
``CHOPAY_PAYOUT_CONCURRENCY`` chunks talk to one rail at once: a semaphore in Redis (sorted set
of holders with expiry, so a killed worker's slot frees itself) or, without Redis, in-process.

When no item is pending or sending, :func:`finish_batch` seals the ledger (a signed
checkpoint, forced) and closes the batch with that checkpoint's tree size. The sweep
:func:`resume_payouts` covers every lost signal: a start job lost with Redis, chunks of a
worker killed with SIGKILL (their leases expire), a batch that stopped progressing for a
lease, a finish that never ran.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app

from chopay import jobs
from chopay.config import Settings
from chopay.crypto import DataKeys, data_keys
from chopay.db import Database, get_db, utcnow
from disbursement import domain
from disbursement.domain import BatchStatus
from disbursement.models import ITEM_ACCOUNT
from disbursement.services import payouts
from disbursement.services.payouts import BatchState, Claimed
from payments.rails.base import Outcome, Rail, Reason, TransferRequest, TransferResult
from payments.rails.errors import AuthenticationFailed, InsufficientFunds, RailError

log = logging.getLogger("chopay.disbursement")

QUEUE = "payouts"
START = "disbursement.execution.start_batch"
CHUNK = "disbursement.execution.send_chunk"
FINISH = "disbursement.execution.finish_batch"
SWEEP = "disbursement.execution.resume_payouts"
JOB_RETRY = (2, 10, 30)
MAX_WAIT = 5.0
"""Seconds a chunk job waits in place for its next lease; longer waits are left to the sweep."""
RAIL_EXTENSION = "chopay.payout_rail"


# ---------------------------------------------------------------------------------------------
# The rail and its in-flight limit


def rail(app: Flask | None = None) -> Rail:
    """Return the payout rail of ``app``: the payOS rail of the settings, built once per process.

    Tests and embedders may put another :class:`~payments.rails.base.Rail` (or a function
    returning one) in ``app.extensions["chopay.payout_rail"]``.
    """
    target = app if app is not None else current_app
    found = target.extensions.get(RAIL_EXTENSION)
    if callable(found) and not isinstance(found, Rail):
        found = found()
        target.extensions[RAIL_EXTENSION] = found
    if found is None:
        from payments.rails.payos import PayosRail

        settings: Settings = target.config["CHOPAY"]
        found = PayosRail.from_settings(settings, timeout=max(1.0, min(30.0, settings.payout_lease / 2)))
        target.extensions[RAIL_EXTENSION] = found
    assert isinstance(found, Rail)
    return found


_LOCAL: dict[str, threading.BoundedSemaphore] = {}
_LOCAL_LOCK = threading.Lock()
_ACQUIRE = """
local key, now, ttl, limit, token = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
if redis.call('ZCARD', key) < limit then
  redis.call('ZADD', key, now + ttl, token)
  redis.call('EXPIRE', key, math.ceil(ttl) + 1)
  return 1
end
return 0
"""


@contextlib.contextmanager
def in_flight(settings: Settings, rail_name: str) -> Iterator[None]:
    """Hold one of the rail's ``CHOPAY_PAYOUT_CONCURRENCY`` slots while the block runs."""
    limit, ttl = settings.payout_concurrency, settings.payout_lease
    connection = getattr(jobs.runner(), "connection", None)
    if connection is None:
        with _LOCAL_LOCK:
            slots = _LOCAL.setdefault(rail_name, threading.BoundedSemaphore(limit))
        with slots:
            yield
        return
    from redis.exceptions import RedisError

    key, token = f"chopay:rail-slots:{rail_name}", uuid.uuid4().hex
    deadline = time.monotonic() + ttl
    while True:
        try:
            if connection.eval(_ACQUIRE, 1, key, time.time(), ttl, limit, token):
                break
        except RedisError:
            if time.monotonic() > deadline:
                raise
            log.warning("rail slot: Redis unreachable, waiting", extra={"rail": rail_name})
            time.sleep(0.5)
            continue
        time.sleep(0.01 + random.random() * 0.02)
    try:
        yield
    finally:
        with contextlib.suppress(RedisError):
            connection.zrem(key, token)


# ---------------------------------------------------------------------------------------------
# Jobs


def start_batch(batch_id: int) -> int:
    """Move an approved batch to running and enqueue a job per chunk of its unfinished items."""
    settings: Settings = current_app.config["CHOPAY"]
    with get_db().unit_of_work() as s:
        batch = payouts.start(s, batch_id)
        if batch is None:
            return 0
        parts = payouts.ranges(s, batch_id, settings.payout_chunk)
    for first_id, last_id in parts:
        enqueue_chunk(batch_id, first_id, last_id)
    if not parts:
        jobs.enqueue(FINISH, batch_id, queue=QUEUE)
    return len(parts)


def enqueue_chunk(batch_id: int, first_id: int, last_id: int) -> str:
    """Enqueue the chunk job of one range of a batch's items (coalesced while it waits)."""
    return jobs.enqueue(CHUNK, batch_id, first_id, last_id, queue=QUEUE, retry=JOB_RETRY)


@dataclass
class _Run:
    """One chunk job's working set."""

    database: Database
    settings: Settings
    keys: DataKeys
    rail: Rail
    batch: BatchState

    def record(
        self, outcomes: Sequence[tuple[Claimed, TransferResult]], alert: dict[str, Any] | None = None
    ) -> None:
        if not outcomes:
            return
        with self.database.unit_of_work() as s:
            payouts.record(
                s,
                self.batch,
                outcomes,
                backoff=self.settings.payout_backoff,
                alert=alert,
            )


def send_chunk(batch_id: int, first_id: int, last_id: int) -> None:
    """Pay a range of a batch's items: claim, resolve unknown ones, send, record; until none is due."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    settings: Settings = app.config["CHOPAY"]
    database = get_db()
    the_rail = rail(app)
    deadline = time.monotonic() + max(60.0, settings.payout_lease * 5)
    while True:
        with database.read_session() as s:
            state = payouts.batch_state(s, batch_id)
        if state is None or state.status not in (
            BatchStatus.RUNNING,
            BatchStatus.PAUSED,
            BatchStatus.CANCELLED,
        ):
            return
        # A paused or cancelled batch sends nothing new; what was sent still resolves.
        sending_only = state.status != BatchStatus.RUNNING
        run = _Run(database, settings, data_keys(), the_rail, state)
        with database.unit_of_work() as s:
            claimed = payouts.claim(
                s,
                batch_id,
                first_id,
                last_id,
                lease=settings.payout_lease,
                limit=settings.payout_chunk,
                unknown_only=sending_only,
            )
        if claimed:
            with in_flight(settings, the_rail.name):
                _step(run, claimed)
        with database.read_session() as s:
            due = payouts.next_due(s, batch_id, first_id, last_id, sending_only=sending_only)
        if due is None:
            if not sending_only or state.status == BatchStatus.CANCELLED:
                jobs.enqueue(FINISH, batch_id, queue=QUEUE)
            return
        wait = (due - utcnow()).total_seconds()
        if wait > MAX_WAIT or time.monotonic() + wait > deadline:
            return  # the sweep re-enqueues this range once its leases expire
        time.sleep(max(wait, 0.02))


def _step(run: _Run, claimed: list[Claimed]) -> None:
    """Resolve the unknown items among ``claimed``, then send the rest and those the rail never saw."""
    unknown = [c for c in claimed if c.unknown]
    fresh = [c for c in claimed if not c.unknown]
    for part in (_resolve(run, unknown) if unknown else [], fresh):
        for start_at in range(0, len(part), run.rail.max_chunk):
            _send(run, part[start_at : start_at + run.rail.max_chunk])


def _resolve(run: _Run, unknown: list[Claimed]) -> list[Claimed]:
    """Ask the rail about unknown items; record what it knows; return those it has no trace of."""
    by_chunk: dict[str | None, list[Claimed]] = {}
    for c in unknown:
        by_chunk.setdefault(c.chunk_ref, []).append(c)
    outcomes: list[tuple[Claimed, TransferResult]] = []
    resend: list[Claimed] = []
    for chunk_reference, group in by_chunk.items():
        found = _from_chunk(run.rail, group, chunk_reference)
        for c in group:
            if c.reference in found:
                result: TransferResult | None = found[c.reference]
            else:
                try:
                    result = run.rail.status(c.reference)
                except RailError as exc:
                    # Nothing learnt: this item stays unknown and is asked again after a backoff.
                    outcomes.append((c, TransferResult(c.reference, Outcome.TRANSIENT, raw_code=exc.code)))
                    continue
            if result is None:
                if c.attempts >= run.settings.payout_max_attempts:
                    outcomes.append((c, payouts.fail_unreachable(c)))
                else:
                    resend.append(c)
            elif result.outcome is Outcome.INSUFFICIENT_FUNDS:
                resend.append(c)  # refused, never executed: send it again like a new one
            else:
                outcomes.append((c, result))
    run.record(outcomes)
    if resend:
        with run.database.unit_of_work() as s:
            reference = payouts.bump_attempts(s, resend, lease=run.settings.payout_lease)
        resend = [
            dataclasses.replace(c, attempts=c.attempts + 1, unknown=False, chunk_ref=reference)
            for c in resend
        ]
    return resend


def _from_chunk(
    the_rail: Rail, group: list[Claimed], chunk_reference: str | None
) -> dict[str, TransferResult]:
    """Ask once about every item sent in one chunk (on rails that can); {} if it cannot say."""
    bulk: Callable[..., dict[str, TransferResult]] | None = getattr(the_rail, "statuses", None)
    if chunk_reference is None or bulk is None:
        return {}
    try:
        return bulk([c.reference for c in group], chunk_reference=chunk_reference)
    except RailError:
        return {}  # each item is then asked alone


def _send(run: _Run, part: list[Claimed]) -> None:
    if not part:
        return
    memo = f"{run.batch.program} {run.batch.period}"
    requests = [
        TransferRequest(
            c.reference, c.amount, c.bin, run.keys.decrypt(c.account_number, ITEM_ACCOUNT.context), memo
        )
        for c in part
    ]
    # The same set as claimed (or bumped) gives the reference stored on its items.
    reference = domain.chunk_reference([c.reference for c in part])
    alert = None
    try:
        results = run.rail.send(requests, chunk_reference=reference)
    except (InsufficientFunds, AuthenticationFailed) as exc:
        # Nothing was executed: the items wait as pending while the batch is paused.
        alert = _alert(exc)
        results = [
            TransferResult(t.reference, Outcome.INSUFFICIENT_FUNDS, raw_code=exc.raw_code) for t in requests
        ]
    except RailError as exc:
        results = [_whole_chunk(t.reference, exc) for t in requests]
    if alert is None and any(r.outcome is Outcome.INSUFFICIENT_FUNDS for r in results):
        alert = _alert(InsufficientFunds("the source account cannot cover some transfers of a chunk"))
    run.record(list(zip(part, results, strict=True)), alert)


def _whole_chunk(reference: str, exc: RailError) -> TransferResult:
    """Return what a failure of the whole send call means for one of its transfers."""
    outcome = exc.outcome
    if outcome is Outcome.FAILED and exc.code == "reference_conflict":
        outcome = Outcome.PENDING  # the reference exists at the rail: ask, never assume
    if outcome is Outcome.FAILED:
        return TransferResult(reference, outcome, reason=Reason.REJECTED, raw_code=exc.raw_code or exc.code)
    return TransferResult(reference, outcome, raw_code=exc.raw_code or exc.code, message=exc.message)


def _alert(exc: RailError) -> dict[str, Any]:
    if isinstance(exc, AuthenticationFailed):
        message = "The payout rail refused chopay's credentials; fix CHOPAY_PAYOUT_* and resume the batch."
    else:
        message = "The payout source account cannot cover the next transfers; fund it and resume the batch."
    return {"code": exc.code, "message": message, "rail_code": exc.raw_code, "at": utcnow().isoformat()}


def finish_batch(batch_id: int) -> None:
    """Seal the ledger and close a batch whose items are all final, recording the checkpoint size."""
    from payments.ledger.jobs import seal

    database = get_db()
    with database.read_session() as s:
        if payouts.unfinished(s, batch_id):
            return
    from payments.ledger.tree import latest_checkpoint

    seal(database, current_app.config["CHOPAY"], force=True)
    with database.unit_of_work() as s:
        # The checkpoint just signed, or the sequencer's own if it sealed these entries first.
        checkpoint = latest_checkpoint(s)
        done = payouts.finish(s, batch_id, checkpoint.size if checkpoint is not None else None)
    if done is not None:
        log.info(
            "batch finished",
            extra={"batch_id": batch_id, "status": done.status, "tree_size": done.tree_size},
        )


def resume_payouts() -> None:
    """Sweep: re-enqueue whatever a lost signal or a killed worker left of every active batch."""
    settings: Settings = current_app.config["CHOPAY"]
    now = utcnow()
    with get_db().read_session() as s:
        active = payouts.active_batches(s)
        plans: list[tuple[int, str, list[tuple[int, int]]]] = []
        for batch_id, status, progress_at, _finished in active:
            if status == BatchStatus.APPROVED:
                plans.append((batch_id, "start", []))
                continue
            stalled = progress_at is None or (now - progress_at).total_seconds() > settings.payout_lease
            if not payouts.unfinished(s, batch_id):
                plans.append((batch_id, "finish", []))
            elif status == BatchStatus.RUNNING and stalled:
                plans.append((batch_id, "start", []))
            else:
                plans.append(
                    (
                        batch_id,
                        "chunks",
                        payouts.ranges(s, batch_id, settings.payout_chunk, expired_only=True),
                    )
                )
    for batch_id, what, parts in plans:
        if what == "start":
            jobs.enqueue(START, batch_id, queue=QUEUE)
        elif what == "finish":
            jobs.enqueue(FINISH, batch_id, queue=QUEUE)
        for first_id, last_id in parts:
            enqueue_chunk(batch_id, first_id, last_id)


def resume(batch_id: int) -> None:
    """Enqueue the chunks of a batch that was paused (after the request that resumed it commits)."""
    jobs.enqueue(START, batch_id, queue=QUEUE)


SWEEPS = (jobs.Sweep(SWEEP, QUEUE),)

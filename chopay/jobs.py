"""Background jobs: one ``enqueue`` for Redis-backed rq and for the in-process runner.

A job is a module-level function named by its dotted path (``"payments.ledger.jobs.sequence"``)
that takes ids and primitives, re-reads its state from the database and is safe to run twice.
The queue carries signals only; the database is the source of truth.

Enqueuing coalesces: while a run of the same job with the same arguments (its deterministic
id, :func:`job_id_for`) is waiting to start, enqueuing it again adds nothing, because that run
will read everything committed so far. Once a run has *started*, a new enqueue queues another
run after it. So a signal is never lost: every change committed before an enqueue is seen by a
run that starts after it.

* With ``CHOPAY_REDIS_URL`` set, :func:`enqueue` puts the job on an rq queue for ``chopay
  worker`` processes. A short-lived marker key in Redis (``chopay:queued:<id>``) says that a
  run is waiting; the run deletes it as it starts (and sets it again when rq schedules a retry).
* Without it, :class:`InlineRunner` executes the same functions on a thread inside the web
  process (``chopay serve`` starts it), with the same coalescing and retry intervals.

Sweeps are periodic tasks that features register (:func:`register_sweep`): recovery of
unfinished work every ``CHOPAY_SWEEP_INTERVAL`` seconds, or a faster timer with a cheap ``due``
check (sealing the ledger). The runner's sweep thread, or ``chopay worker``, enqueues each of
them once at start-up (so that work interrupted by a crash resumes within seconds) and then
whenever its interval has passed.

Listeners are jobs that a feature signals after many small commits (the ledger's sequencer,
after every posting): an rq job per signal would cost far more than the work it does. A
``chopay worker`` that serves the listener's queue runs it on a thread of its own
(:class:`ListenLoop`), subscribed to a Redis channel. :func:`signal` then publishes to that
channel, one command, and the thread runs the job once for every signal that arrived while it
was busy, and at most once per ``pace`` seconds. When no worker listens (the publish reaches
nobody), :func:`signal` enqueues the rq job as before; the sweeps cover a signal that is lost.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import queue as queue_mod
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from flask import Flask, current_app

log = logging.getLogger("chopay.jobs")

DEFAULT_QUEUE = "default"
QUEUES = ("default", "ledger", "payouts")
DEFAULT_RETRY = (5, 30, 120)
_ID_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def resolve(name: str) -> Callable[..., Any]:
    """Import the job function named by its dotted path."""
    module, _, attr = name.rpartition(".")
    if not module:
        raise ValueError(f"job name {name!r} must be a dotted path module.function")
    func: Callable[..., Any] = getattr(importlib.import_module(module), attr)
    return func


def job_id_for(name: str, args: Sequence[Any]) -> str:
    """Return the deterministic job id of calling ``name`` with ``args``."""
    raw = "-".join([name, *map(str, args)])
    safe = _ID_UNSAFE.sub("_", raw)
    if len(safe) > 120:
        safe = safe[:80] + "-" + hashlib.sha256(raw.encode()).hexdigest()[:32]
    return safe


@dataclass(frozen=True)
class Sweep:
    """A task enqueued periodically, and once when the runner starts."""

    name: str
    queue: str = DEFAULT_QUEUE
    every: float | None = None
    """Seconds between runs; None means ``CHOPAY_SWEEP_INTERVAL``."""
    due: Callable[[], bool] | None = None
    """A cheap check, run in an app context, that says whether the task has work to do."""


def register_sweep(app: Flask, sweep: Sweep) -> None:
    """Register ``sweep`` on ``app``; a sweep registered twice (same name and interval) runs once."""
    registry: dict[tuple[str, float | None], Sweep] = app.extensions.setdefault("chopay.sweeps", {})
    registry[(sweep.name, sweep.every)] = sweep


def sweeps(app: Flask | None = None) -> list[Sweep]:
    """Return the sweeps registered on ``app`` (the current app by default)."""
    target = app if app is not None else current_app
    return list(target.extensions.get("chopay.sweeps", {}).values())


class SweepLoop:
    """Enqueue every sweep at start, then each one whenever its interval has passed."""

    def __init__(self, app: Flask, default_every: float) -> None:
        self.app = app
        self.default_every = default_every

    def run(self, stop: threading.Event) -> None:
        """Loop until ``stop`` is set."""
        next_at: dict[Sweep, float] = {}
        while not stop.is_set():
            now = time.monotonic()
            with self.app.app_context():
                for sweep in sweeps(self.app):
                    if next_at.get(sweep, now) <= now:  # a sweep not seen before fires at once
                        next_at[sweep] = now + (sweep.every or self.default_every)
                        self._fire(sweep)
            wake = min(next_at.values(), default=now + self.default_every)
            stop.wait(max(0.01, wake - time.monotonic()))

    def _fire(self, sweep: Sweep) -> None:
        try:
            if sweep.due is None or sweep.due():
                enqueue(sweep.name, queue=sweep.queue, job_id=_sweep_id(sweep))
        except Exception:
            # A sweep that cannot be checked or enqueued now (database or Redis down) is tried
            # again at its next interval; the loop itself must keep running.
            log.exception("sweep failed", extra={"sweep": sweep.name})


def _sweep_id(sweep: Sweep) -> str:
    return "sweep-" + job_id_for(sweep.name, ())


@dataclass(frozen=True)
class Listener:
    """A job without arguments that ``chopay worker`` runs on its own thread when signalled."""

    name: str
    queue: str = DEFAULT_QUEUE
    pace: float = 0.05
    """Seconds from the end of one run to the start of the next, at least: signals meanwhile coalesce."""


def register_listener(app: Flask, listener: Listener) -> None:
    """Register ``listener`` on ``app``: workers that serve its queue run it on a thread."""
    registry: dict[str, Listener] = app.extensions.setdefault("chopay.listeners", {})
    registry[listener.name] = listener


def listeners(app: Flask | None = None) -> list[Listener]:
    """Return the listeners registered on ``app`` (the current app by default)."""
    target = app if app is not None else current_app
    return list(target.extensions.get("chopay.listeners", {}).values())


WAKE_PREFIX = "chopay:wake:"


def wake_channel(connection: Any, name: str) -> str:
    """Return the Redis channel on which the listener of job ``name`` is signalled.

    Channels are shared by every database of a Redis server: the name carries the database
    number, so that two deployments on one server never take each other's signals.
    """
    db = connection.connection_pool.connection_kwargs.get("db", 0)
    return f"{WAKE_PREFIX}{db}:{job_id_for(name, ())}"


class ListenLoop:
    """Run a listener's job whenever its channel is signalled, until ``stop`` is set.

    The signals that arrive while a run is going on are drained before the next run starts: one
    run covers every commit signalled before it began. A failed run is logged and does not end
    the loop; the next signal, or the job's sweep, runs it again. A lost connection to Redis is
    retried every second; meanwhile the publishes reach nobody and :func:`signal` enqueues.
    """

    def __init__(self, app: Flask, connection: Any, listener: Listener) -> None:
        self.app = app
        self.connection = connection
        self.listener = listener
        self.runs = 0

    def run(self, stop: threading.Event) -> None:
        """Loop until ``stop`` is set."""
        while not stop.is_set():
            try:
                self._listen(stop)
            except Exception:
                log.exception("listener lost its channel", extra={"job": self.listener.name})
                stop.wait(1.0)

    def _listen(self, stop: threading.Event) -> None:
        pubsub = self.connection.pubsub(ignore_subscribe_messages=True)
        try:
            pubsub.subscribe(wake_channel(self.connection, self.listener.name))
            while not stop.is_set():
                if pubsub.get_message(timeout=1.0) is None:
                    continue
                while pubsub.get_message(timeout=0) is not None:
                    pass  # signalled before this run starts: it reads their commits too
                self._run_once()
                stop.wait(self.listener.pace)
        finally:
            pubsub.close()

    def _run_once(self) -> None:
        self.runs += 1
        try:
            with self.app.app_context():
                resolve(self.listener.name)()
        except Exception:
            log.exception("listener run failed", extra={"job": self.listener.name})


class Runner(Protocol):
    def enqueue(
        self, name: str, args: tuple[Any, ...], job_id: str, queue: str, retry: Sequence[int]
    ) -> str: ...

    def wake(self, name: str) -> bool: ...

    def counts(self) -> dict[tuple[str, str], int]: ...

    def ping(self) -> None: ...


@dataclass(order=True)
class _Pending:
    due: float
    seq: int
    job_id: str = field(compare=False)
    name: str = field(compare=False)
    args: tuple[Any, ...] = field(compare=False)
    queue: str = field(compare=False)
    retry: Sequence[int] = field(compare=False)
    attempt: int = field(compare=False, default=0)


class InlineRunner:
    """Run jobs on threads inside this process: one per queue, each in due order, one at a time.

    A queue of its own per thread means that a long job (a payout chunk) never holds up a short
    one on another queue (the ledger's sequencer).
    """

    def __init__(self, app: Flask, sweep_interval: float) -> None:
        self.app = app
        self.sweep_interval = sweep_interval
        self._heaps: dict[str, queue_mod.PriorityQueue[_Pending]] = {
            name: queue_mod.PriorityQueue() for name in QUEUES
        }
        self._pending: set[str] = set()
        self._lock = threading.Lock()
        self._seq = 0
        self._counts: Counter[tuple[str, str]] = Counter()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def enqueue(self, name: str, args: tuple[Any, ...], job_id: str, queue: str, retry: Sequence[int]) -> str:
        self._put(_Pending(time.monotonic(), 0, job_id, name, args, queue, retry), coalesce=True)
        return job_id

    def _put(self, item: _Pending, coalesce: bool = False) -> None:
        with self._lock:
            if coalesce and item.job_id in self._pending:
                return
            self._pending.add(item.job_id)
            self._seq += 1
            item.seq = self._seq
            self._counts[(item.queue, "queued" if item.attempt == 0 else "retried")] += 1
            self._heaps.setdefault(item.queue, queue_mod.PriorityQueue()).put(item)

    def wake(self, name: str) -> bool:
        """Tell whether a listener took the signal: never here, where enqueuing costs as little."""
        return False

    def counts(self) -> dict[tuple[str, str], int]:
        with self._lock:
            return dict(self._counts)

    def ping(self) -> None:
        return None

    def run_pending(self, timeout: float = 30.0) -> int:
        """Run every job that is due on any queue, including jobs they enqueue; return how many ran."""
        ran = 0
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            item = next((i for i in map(self._take_due, list(self._heaps)) if i is not None), None)
            if item is None:
                return ran
            self._execute(item)
            ran += 1
        return ran

    def _take_due(self, queue: str) -> _Pending | None:
        heap = self._heaps[queue]
        try:
            item = heap.get_nowait()
        except queue_mod.Empty:
            return None
        if item.due > time.monotonic():
            heap.put(item)
            return None
        return item

    def _execute(self, item: _Pending) -> None:
        with self._lock:
            self._pending.discard(item.job_id)
            self._counts[(item.queue, "started")] += 1
        try:
            with self.app.app_context():
                resolve(item.name)(*item.args)
        except Exception:
            log.exception("job failed", extra={"job_id": item.job_id, "attempt": item.attempt + 1})
            if item.attempt < len(item.retry):
                retry_at = time.monotonic() + item.retry[item.attempt]
                self._put(
                    _Pending(
                        retry_at,
                        0,
                        item.job_id,
                        item.name,
                        item.args,
                        item.queue,
                        item.retry,
                        item.attempt + 1,
                    )
                )
            else:
                with self._lock:
                    self._counts[(item.queue, "failed")] += 1
            return
        with self._lock:
            self._counts[(item.queue, "finished")] += 1

    def start(self) -> None:
        """Start one worker thread per queue and the sweep thread (idempotent)."""
        if self._threads:
            return
        self._threads = [
            threading.Thread(target=self._work, args=(name,), name=f"chopay-jobs-{name}", daemon=True)
            for name in self._heaps
        ]
        self._threads.append(threading.Thread(target=self._sweep_loop, name="chopay-sweeps", daemon=True))
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Ask the threads to stop after their current job."""
        self._stop.set()

    def join(self, timeout: float) -> bool:
        """Wait for the threads to end; tell whether they all did."""
        for thread in self._threads:
            thread.join(timeout)
        return not any(t.is_alive() for t in self._threads)

    def _work(self, queue: str) -> None:
        heap = self._heaps[queue]
        while not self._stop.is_set():
            try:
                item = heap.get(timeout=0.2)
            except queue_mod.Empty:
                continue
            wait = item.due - time.monotonic()
            if wait > 0:
                heap.put(item)
                self._stop.wait(min(wait, 0.2))
                continue
            self._execute(item)

    def _sweep_loop(self) -> None:
        SweepLoop(self.app, self.sweep_interval).run(self._stop)


class RedisRunner:
    """Put jobs on rq queues in Redis for ``chopay worker`` processes."""

    def __init__(self, url: str) -> None:
        from redis import Redis

        self.connection = Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)

    def queue(self, name: str) -> Any:
        """Return the rq queue called ``name``."""
        from rq import Queue

        return Queue(name, connection=self.connection)

    def enqueue(self, name: str, args: tuple[Any, ...], job_id: str, queue: str, retry: Sequence[int]) -> str:
        from rq import Retry

        marker = MARKER_PREFIX + job_id
        if not self.connection.set(marker, queue, nx=True, ex=MARKER_TTL):
            return job_id  # a run is already waiting to start; it will see this signal's data
        try:
            self.queue(queue).enqueue(
                run_marked,
                marker,
                name,
                *args,
                job_id=f"{job_id}--{uuid.uuid4().hex[:12]}",
                retry=Retry(max=len(retry), interval=list(retry)) if retry else None,
                result_ttl=3600,
                failure_ttl=7 * 24 * 3600,
                description=name,
            )
        except BaseException:
            self.connection.delete(marker)
            raise
        return job_id

    def wake(self, name: str) -> bool:
        """Signal the listener of job ``name``; tell whether any worker's listener received it."""
        return int(self.connection.publish(wake_channel(self.connection, name), b"")) > 0

    def counts(self) -> dict[tuple[str, str], int]:
        out: dict[tuple[str, str], int] = {}
        for name in QUEUES:
            q = self.queue(name)
            out[(name, "queued")] = q.count
            out[(name, "started")] = q.started_job_registry.count
            out[(name, "finished")] = q.finished_job_registry.count
            out[(name, "failed")] = q.failed_job_registry.count
            out[(name, "scheduled")] = q.scheduled_job_registry.count
        return out

    def ping(self) -> None:
        self.connection.ping()


MARKER_PREFIX = "chopay:queued:"
# A marker outlives its run only if a worker died between taking the job and starting it; it
# then coalesces signals into nothing for at most this long, and the sweeps cover the gap.
MARKER_TTL = 120


def run_marked(marker: str, name: str, *args: Any) -> None:
    """Run the job ``name`` on an rq worker, first clearing the marker that coalesces its signals."""
    from rq import get_current_job

    job = get_current_job()
    connection = job.connection if job is not None else None
    if connection is not None:
        connection.delete(marker)
    try:
        resolve(name)(*args)
    except BaseException:
        if connection is not None and job is not None and (job.retries_left or 0) > 0:
            # rq schedules a retry: until it starts, that retry is the waiting run.
            connection.set(marker, job.origin, ex=MARKER_TTL)
        raise


def init_app(app: Flask, redis_url: str | None, sweep_interval: float) -> Runner:
    """Attach the job runner that matches the configuration to ``app``."""
    runner: Runner = RedisRunner(redis_url) if redis_url else InlineRunner(app, sweep_interval)
    app.extensions["chopay.jobs"] = runner
    return runner


def runner(app: Flask | None = None) -> Runner:
    """Return the job runner of ``app`` (the current app by default)."""
    target = app if app is not None else current_app
    r: Runner = target.extensions["chopay.jobs"]
    return r


def enqueue(
    name: str,
    *args: Any,
    job_id: str | None = None,
    queue: str = DEFAULT_QUEUE,
    retry: Sequence[int] = DEFAULT_RETRY,
) -> str:
    """Enqueue the job ``name`` with ``args`` under a deterministic id; return the id."""
    resolve(name)  # fail now, in the caller, on a misspelt job
    if queue not in QUEUES:
        raise ValueError(f"unknown queue {queue!r}; the queues are {', '.join(QUEUES)}")
    return runner().enqueue(name, tuple(args), job_id or job_id_for(name, args), queue, retry)


def signal(name: str, *args: Any, queue: str = DEFAULT_QUEUE) -> str | None:
    """Ask for a run of ``name`` when inside an app; elsewhere (scripts) leave it to the sweep.

    A registered listener's job goes to the workers' listening threads when one receives it,
    and is enqueued otherwise.
    """
    from flask import has_app_context

    if not has_app_context():
        return None
    if not args and name in current_app.extensions.get("chopay.listeners", {}) and runner().wake(name):
        return job_id_for(name, ())
    return enqueue(name, *args, queue=queue)


def run_sweeps() -> list[str]:
    """Enqueue every sweep registered on the current app now; return their job ids."""
    return [enqueue(s.name, queue=s.queue, job_id=_sweep_id(s)) for s in sweeps()]

"""Background jobs: one ``enqueue`` for Redis-backed rq and for the in-process runner.

A job is a module-level function named by its dotted path (``"payments.ledger.jobs.sequence"``)
that takes ids and primitives, re-reads its state from the database and is safe to run twice.
The queue carries signals only; the database is the source of truth.

* With ``CHOPAY_REDIS_URL`` set, :func:`enqueue` puts the job on an rq queue for ``chopay
  worker`` processes. A job whose deterministic id is already queued or running is not added
  again.
* Without it, :class:`InlineRunner` executes the same functions on a thread inside the web
  process (``chopay serve`` starts it), with the same de-duplication and retry intervals.

Sweeps are recovery tasks that later features register with :func:`register_sweep`; the runner
(or ``chopay worker``) enqueues each of them every ``CHOPAY_SWEEP_INTERVAL`` seconds, so work
interrupted by a crash or a lost Redis is picked up again.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import queue as queue_mod
import re
import threading
import time
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
    """A recovery task enqueued periodically."""

    name: str
    queue: str = DEFAULT_QUEUE


_SWEEPS: dict[str, Sweep] = {}


def register_sweep(name: str, queue: str = DEFAULT_QUEUE) -> None:
    """Register the job ``name`` (no arguments) to run on every sweep."""
    _SWEEPS[name] = Sweep(name, queue)


def sweeps() -> list[Sweep]:
    """Return the registered sweeps."""
    return list(_SWEEPS.values())


class Runner(Protocol):
    def enqueue(
        self, name: str, args: tuple[Any, ...], job_id: str, queue: str, retry: Sequence[int]
    ) -> str: ...

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
    """Run jobs on a thread inside this process, in due order, one at a time."""

    def __init__(self, app: Flask, sweep_interval: float) -> None:
        self.app = app
        self.sweep_interval = sweep_interval
        self._heap: queue_mod.PriorityQueue[_Pending] = queue_mod.PriorityQueue()
        self._pending: set[str] = set()
        self._lock = threading.Lock()
        self._seq = 0
        self._counts: Counter[tuple[str, str]] = Counter()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._sweeper: threading.Thread | None = None

    def enqueue(self, name: str, args: tuple[Any, ...], job_id: str, queue: str, retry: Sequence[int]) -> str:
        with self._lock:
            if job_id in self._pending:
                return job_id
            self._pending.add(job_id)
            self._seq += 1
            self._counts[(queue, "queued")] += 1
            self._heap.put(_Pending(time.monotonic(), self._seq, job_id, name, args, queue, retry))
        return job_id

    def counts(self) -> dict[tuple[str, str], int]:
        with self._lock:
            return dict(self._counts)

    def ping(self) -> None:
        return None

    def run_pending(self, timeout: float = 30.0) -> int:
        """Run every job that is due, including jobs they enqueue; return how many ran."""
        ran = 0
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                item = self._heap.get_nowait()
            except queue_mod.Empty:
                return ran
            if item.due > time.monotonic():
                self._heap.put(item)
                return ran
            self._execute(item)
            ran += 1
        return ran

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
                delay = item.retry[item.attempt]
                with self._lock:
                    self._pending.add(item.job_id)
                    self._seq += 1
                    self._counts[(item.queue, "retried")] += 1
                    self._heap.put(
                        _Pending(
                            time.monotonic() + delay,
                            self._seq,
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
        """Start the worker and sweeper threads (idempotent)."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._work, name="chopay-jobs", daemon=True)
        self._sweeper = threading.Thread(target=self._sweep_loop, name="chopay-sweeps", daemon=True)
        self._thread.start()
        self._sweeper.start()

    def stop(self) -> None:
        """Ask the threads to stop after the current job."""
        self._stop.set()

    def _work(self) -> None:
        while not self._stop.is_set():
            try:
                item = self._heap.get(timeout=0.2)
            except queue_mod.Empty:
                continue
            wait = item.due - time.monotonic()
            if wait > 0:
                self._heap.put(item)
                self._stop.wait(min(wait, 0.2))
                continue
            self._execute(item)

    def _sweep_loop(self) -> None:
        while not self._stop.wait(self.sweep_interval):
            with self.app.app_context():
                run_sweeps()


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
        from rq.exceptions import NoSuchJobError
        from rq.job import Job, JobStatus

        try:
            existing = Job.fetch(job_id, connection=self.connection)
            if existing.get_status() in {
                JobStatus.QUEUED,
                JobStatus.STARTED,
                JobStatus.SCHEDULED,
                JobStatus.DEFERRED,
            }:
                return job_id
        except NoSuchJobError:
            pass
        self.queue(queue).enqueue(
            name,
            *args,
            job_id=job_id,
            retry=Retry(max=len(retry), interval=list(retry)) if retry else None,
            result_ttl=3600,
            failure_ttl=7 * 24 * 3600,
        )
        return job_id

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
    return runner().enqueue(name, tuple(args), job_id or job_id_for(name, args), queue, retry)


def signal(name: str, *args: Any, queue: str = DEFAULT_QUEUE) -> str | None:
    """Enqueue ``name`` when running inside an app; elsewhere (scripts) leave it to the sweep."""
    from flask import has_app_context

    if not has_app_context():
        return None
    return enqueue(name, *args, queue=queue)


def run_sweeps() -> list[str]:
    """Enqueue every registered sweep; return their job ids."""
    return [enqueue(s.name, queue=s.queue, job_id="sweep-" + job_id_for(s.name, ())) for s in sweeps()]

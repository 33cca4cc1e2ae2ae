"""Jobs: one ``enqueue``, deterministic ids, retries with intervals, sweeps; in-process and on rq."""

from __future__ import annotations

import datetime as dt
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy.orm import Session

from chopay import jobs
from chopay.db import get_db
from chopay.users import create_user
from tests.chopay import sample_jobs
from tests.chopay.helpers import capture_logs


class FakeClock:
    """A monotonic clock the test moves by hand, so retry intervals need no waiting."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def _work_rq(app: Flask) -> None:
    """Run every queued rq job with a burst SimpleWorker inside an app context."""
    from rq import SimpleWorker

    runner = jobs.runner(app)
    assert isinstance(runner, jobs.RedisRunner)
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with app.app_context():
            worker = SimpleWorker([runner.queue(n) for n in jobs.QUEUES], connection=runner.connection)
            worker.work(burst=True)
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


def _drain(app: Flask) -> None:
    runner = jobs.runner(app)
    if isinstance(runner, jobs.InlineRunner):
        runner.run_pending()
    else:
        _work_rq(app)


@pytest.fixture(params=["inline", "redis"])
def job_app(request: pytest.FixtureRequest, make_app: Callable[..., Flask]) -> Flask:
    """Return an app whose jobs run on the in-process runner, or on rq in a real Redis."""
    if request.param == "inline":
        return make_app()
    redis_url = request.getfixturevalue("redis_url")
    return make_app(redis_url=redis_url, inline_jobs=False)


def test_job_id_is_deterministic():
    assert jobs.job_id_for("a.b.job", (1, "x")) == jobs.job_id_for("a.b.job", (1, "x"))
    assert jobs.job_id_for("a.b.job", (1, "x")) != jobs.job_id_for("a.b.job", (1, "y"))
    assert jobs.job_id_for("a.b.job", (1,)) != jobs.job_id_for("a.b.other", (1,))
    assert jobs.job_id_for("a.b.job", (7, "batch/3")) == "a_b_job-7-batch_3"


def test_long_job_ids_stay_short_and_distinct():
    a = jobs.job_id_for("pkg.job", ("x" * 200 + "1",))
    b = jobs.job_id_for("pkg.job", ("x" * 200 + "2",))
    assert a != b
    assert len(a) <= 120
    assert len(b) <= 120


def test_enqueue_refuses_a_misspelt_job_at_once(app: Flask):
    with app.app_context():
        with pytest.raises(ModuleNotFoundError):
            jobs.enqueue("tests.chopay.no_such_module.job")
        with pytest.raises(AttributeError):
            jobs.enqueue("tests.chopay.sample_jobs.no_such_job")
        with pytest.raises(ValueError, match="dotted path"):
            jobs.enqueue("record")


def test_both_runners_run_the_same_job_in_an_app_context(job_app: Flask, session: Session, tmp_path: Path):
    create_user(session, name="Test Job Reader", role="auditor")
    out = tmp_path / "calls.jsonl"
    with job_app.app_context():
        job_id = jobs.enqueue(sample_jobs.RECORD, str(out), "same")
    assert job_id == jobs.job_id_for(sample_jobs.RECORD, (str(out), "same"))
    assert sample_jobs.calls(out) == []  # enqueuing does not run it
    _drain(job_app)
    # The job saw the user created above: it used the app's database from an app context.
    assert sample_jobs.calls(out) == [{"label": "same", "users": 1}]


def test_enqueuing_twice_while_queued_runs_once(job_app: Flask, tmp_path: Path):
    out = tmp_path / "calls.jsonl"
    with job_app.app_context():
        first = jobs.enqueue(sample_jobs.RECORD, str(out), "once")
        second = jobs.enqueue(sample_jobs.RECORD, str(out), "once")
        other = jobs.enqueue(sample_jobs.RECORD, str(out), "other")
    assert first == second != other
    _drain(job_app)
    assert sorted(str(c["label"]) for c in sample_jobs.calls(out)) == ["once", "other"]
    # Once finished, the same id may run again: the queue carries signals, not state.
    with job_app.app_context():
        jobs.enqueue(sample_jobs.RECORD, str(out), "once")
    _drain(job_app)
    assert sorted(str(c["label"]) for c in sample_jobs.calls(out)) == ["once", "once", "other"]


def test_a_failing_job_is_retried_until_it_succeeds(job_app: Flask, tmp_path: Path):
    out = tmp_path / "flaky.jsonl"
    with job_app.app_context():
        jobs.enqueue(sample_jobs.FLAKY, str(out), 2, retry=(0, 0, 0))
    # Retries due at once run in the same pass (inline) or the same burst (rq).
    _drain(job_app)
    assert [c["attempt"] for c in sample_jobs.calls(out)] == [1, 2, 3]


def test_inline_retries_wait_for_their_intervals(app: Flask, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    clock = FakeClock()
    monkeypatch.setattr(jobs, "time", clock)
    runner = jobs.runner(app)
    assert isinstance(runner, jobs.InlineRunner)
    out = tmp_path / "flaky.jsonl"
    with app.app_context(), capture_logs() as logs:
        jobs.enqueue(sample_jobs.FLAKY, str(out), 2, retry=(5, 30))
        assert runner.run_pending() == 1
        assert runner.counts()[("default", "retried")] == 1
        clock.advance(4.9)
        assert runner.run_pending() == 0
        clock.advance(0.1)
        assert runner.run_pending() == 1
        clock.advance(29.9)
        assert runner.run_pending() == 0
        clock.advance(0.1)
        assert runner.run_pending() == 1
    assert [c["attempt"] for c in sample_jobs.calls(out)] == [1, 2, 3]
    counts = runner.counts()
    assert counts[("default", "retried")] == 2
    assert counts[("default", "finished")] == 1
    assert ("default", "failed") not in counts
    failures = logs.named("chopay.jobs")
    assert [f["attempt"] for f in failures] == [1, 2]
    assert all("deliberate failure" in f["exc"] for f in failures)
    assert {f["job_id"] for f in failures} == {jobs.job_id_for(sample_jobs.FLAKY, (str(out), 2))}


def test_inline_job_fails_for_good_after_its_retries(
    app: Flask, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    clock = FakeClock()
    monkeypatch.setattr(jobs, "time", clock)
    runner = jobs.runner(app)
    assert isinstance(runner, jobs.InlineRunner)
    out = tmp_path / "flaky.jsonl"
    with app.app_context():
        jobs.enqueue(sample_jobs.FLAKY, str(out), 99, retry=(1,))
    assert runner.run_pending() == 1
    clock.advance(1)
    assert runner.run_pending() == 1
    clock.advance(3600)
    assert runner.run_pending() == 0
    assert len(sample_jobs.calls(out)) == 2
    assert runner.counts()[("default", "failed")] == 1


def test_default_retry_intervals_are_used(app: Flask, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    clock = FakeClock()
    monkeypatch.setattr(jobs, "time", clock)
    runner = jobs.runner(app)
    assert isinstance(runner, jobs.InlineRunner)
    out = tmp_path / "flaky.jsonl"
    with app.app_context():
        jobs.enqueue(sample_jobs.FLAKY, str(out), 99)
    ran = [runner.run_pending()]
    for interval in jobs.DEFAULT_RETRY:
        clock.advance(interval - 0.5)
        ran.append(runner.run_pending())
        clock.advance(0.5)
        ran.append(runner.run_pending())
    assert ran == [1] + [0, 1] * len(jobs.DEFAULT_RETRY)
    assert runner.counts()[("default", "failed")] == 1


def test_rq_retries_are_scheduled_after_their_interval(
    make_app: Callable[..., Flask], redis_url: str, tmp_path: Path
):
    app = make_app(redis_url=redis_url, inline_jobs=False)
    runner = jobs.runner(app)
    assert isinstance(runner, jobs.RedisRunner)
    out = tmp_path / "flaky.jsonl"
    with app.app_context():
        job_id = jobs.enqueue(sample_jobs.FLAKY, str(out), 5, retry=(60, 120))
    before = dt.datetime.now(dt.UTC)
    _work_rq(app)
    assert len(sample_jobs.calls(out)) == 1
    registry = runner.queue("default").scheduled_job_registry
    (scheduled,) = registry.get_job_ids()
    assert scheduled.startswith(job_id + "--")  # each run of a job id is its own rq job
    due = registry.get_scheduled_time(scheduled)
    assert before + dt.timedelta(seconds=59) <= due <= before + dt.timedelta(seconds=70)
    # While it waits for its retry, enqueuing it again adds nothing.
    with app.app_context():
        assert jobs.enqueue(sample_jobs.FLAKY, str(out), 5, retry=(60, 120)) == job_id
    assert runner.queue("default").count == 0


def test_rq_job_counts_reach_the_metrics(make_app: Callable[..., Flask], redis_url: str, tmp_path: Path):
    app = make_app(redis_url=redis_url, inline_jobs=False)
    with app.app_context():
        jobs.enqueue(sample_jobs.RECORD, str(tmp_path / "calls.jsonl"), "m", queue="payouts")
    assert jobs.runner(app).counts()[("payouts", "queued")] == 1
    _work_rq(app)
    counts = jobs.runner(app).counts()
    assert counts[("payouts", "queued")] == 0
    assert counts[("payouts", "finished")] == 1
    text = app.test_client().get("/metrics").get_data(as_text=True)
    assert 'chopay_jobs{queue="payouts",state="finished"} 1.0' in text


def _only_sweeps(app: Flask, *sweeps: jobs.Sweep) -> None:
    """Replace the app's sweeps (the ledger registers its own) with ``sweeps``."""
    app.extensions["chopay.sweeps"] = {}
    for sweep in sweeps:
        jobs.register_sweep(app, sweep)


def test_the_ledger_registers_its_recovery_sweep_and_sealing_timer(app: Flask):
    ledger = [s for s in jobs.sweeps(app) if s.name == "payments.ledger.jobs.sequence"]
    assert {(s.queue, s.every is None, s.due is None) for s in ledger} == {
        ("ledger", True, True),  # recovery, every CHOPAY_SWEEP_INTERVAL
        ("ledger", False, False),  # the sealing timer, with a cheap check
    }


def test_run_sweeps_enqueues_every_registered_sweep(job_app: Flask, tmp_path: Path):
    _only_sweeps(job_app, jobs.Sweep(sample_jobs.SWEEP), jobs.Sweep(sample_jobs.SWEEP))
    assert [s.name for s in jobs.sweeps(job_app)] == [sample_jobs.SWEEP]  # registering twice keeps one
    with job_app.app_context():
        ids = jobs.run_sweeps()
        assert jobs.run_sweeps() == ids  # still queued: not added again
    assert ids == ["sweep-" + jobs.job_id_for(sample_jobs.SWEEP, ())]
    _drain(job_app)
    assert sample_jobs.calls(tmp_path / sample_jobs.SWEEP_LOG) == [{"sweep": True, "users": 0}]


def test_sweeps_go_to_their_queue(app: Flask):
    _only_sweeps(app, jobs.Sweep(sample_jobs.SWEEP, queue="ledger"))
    with app.app_context():
        jobs.run_sweeps()
    assert jobs.runner(app).counts() == {("ledger", "queued"): 1}


def test_an_unknown_queue_is_refused(app: Flask):
    with app.app_context(), pytest.raises(ValueError, match="unknown queue 'fast'"):
        jobs.enqueue(sample_jobs.RECORD, "x", "y", queue="fast")


def test_a_signal_while_a_run_is_in_progress_queues_another_run(job_app: Flask, tmp_path: Path):
    """The run that is going on may have read the database before the signal's data committed."""
    out = tmp_path / "calls.jsonl"
    runner = jobs.runner(job_app)
    with job_app.app_context():
        jobs.enqueue(sample_jobs.RECORD, str(out), "started")
    if isinstance(runner, jobs.InlineRunner):
        item = runner._take_due("default")
        assert item is not None
        with runner._lock:  # what _execute does first: the run has started
            runner._pending.discard(item.job_id)
    else:
        from rq import SimpleWorker

        worker = SimpleWorker([runner.queue("default")], connection=runner.connection)
        job, _ = worker.dequeue_job_and_maintain_ttl(timeout=1)
        assert job.args[0].startswith(jobs.MARKER_PREFIX)
        runner.connection.delete(job.args[0])  # what run_marked does first: the run has started
    with job_app.app_context():
        jobs.enqueue(sample_jobs.RECORD, str(out), "started")  # must not be coalesced away
        jobs.enqueue(sample_jobs.RECORD, str(out), "started")  # this one may be
    _drain(job_app)
    assert [c["label"] for c in sample_jobs.calls(out)] == ["started"]


def _wait_for(condition: Callable[[], bool], timeout: float = 15.0) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` passes; return whether it held."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


@pytest.fixture
def threaded_runner(committed_app: Flask) -> Iterator[jobs.InlineRunner]:
    """Start the app's in-process runner with a fast sweep; stop it and join its threads after."""
    runner = jobs.runner(committed_app)
    assert isinstance(runner, jobs.InlineRunner)
    runner.sweep_interval = 0.05
    _only_sweeps(committed_app)
    runner.start()
    yield runner
    runner.stop()
    assert runner.join(timeout=10)


def test_started_runner_works_jobs_and_sweeps_on_its_threads(
    committed_app: Flask, threaded_runner: jobs.InlineRunner, tmp_path: Path
):
    with get_db(committed_app).unit_of_work() as s:
        create_user(s, name="Test Threaded", role="auditor")
    out = tmp_path / "calls.jsonl"
    threaded_runner.start()  # a second start is harmless
    with committed_app.app_context():
        jobs.enqueue(sample_jobs.RECORD, str(out), "thread")
    assert _wait_for(lambda: len(sample_jobs.calls(out)) == 1)
    assert sample_jobs.calls(out) == [{"label": "thread", "users": 1}]
    jobs.register_sweep(committed_app, jobs.Sweep(sample_jobs.SWEEP))
    sweeps = committed_app.config["CHOPAY"].data_dir / sample_jobs.SWEEP_LOG
    assert _wait_for(lambda: len(sample_jobs.calls(sweeps)) >= 2)
    assert sample_jobs.calls(sweeps)[0] == {"sweep": True, "users": 1}
    assert threaded_runner.counts()[("default", "finished")] >= 3


# -- listeners: a job run on a worker's own thread, signalled through a Redis channel ----------


@pytest.fixture
def listening(make_app: Callable[..., Flask], redis_url: str) -> Iterator[tuple[Flask, jobs.ListenLoop]]:
    """An app on Redis with a listener for the sample job, and its loop running on a thread."""
    import threading

    app = make_app(redis_url=redis_url, inline_jobs=False)
    listener = jobs.Listener(sample_jobs.LISTENED, "ledger", pace=0.01)
    jobs.register_listener(app, listener)
    runner = jobs.runner(app)
    assert isinstance(runner, jobs.RedisRunner)
    loop = jobs.ListenLoop(app, runner.connection, listener)
    stop = threading.Event()
    thread = threading.Thread(target=loop.run, args=(stop,), daemon=True)
    thread.start()
    channel = jobs.wake_channel(runner.connection, sample_jobs.LISTENED)
    assert _wait_for(lambda: dict(runner.connection.pubsub_numsub(channel)).get(channel.encode(), 0) == 1)
    yield app, loop
    stop.set()
    thread.join(timeout=10)
    assert not thread.is_alive()


def _listened(app: Flask) -> int:
    return len(sample_jobs.calls(app.config["CHOPAY"].data_dir / sample_jobs.LISTEN_LOG))


def test_a_signal_runs_a_listened_job_on_the_listening_thread_not_on_rq(listening):
    app, loop = listening
    with app.app_context():
        assert jobs.signal(sample_jobs.LISTENED, queue="ledger") == jobs.job_id_for(sample_jobs.LISTENED, ())
    assert _wait_for(lambda: _listened(app) == 1)
    runner = jobs.runner(app)
    assert isinstance(runner, jobs.RedisRunner)
    assert runner.queue("ledger").count == 0  # nothing went through rq
    assert loop.runs == 1


def test_without_a_listening_worker_the_signal_enqueues_the_job(
    make_app: Callable[..., Flask], redis_url: str
):
    app = make_app(redis_url=redis_url, inline_jobs=False)
    jobs.register_listener(app, jobs.Listener(sample_jobs.LISTENED, "ledger"))
    runner = jobs.runner(app)
    assert isinstance(runner, jobs.RedisRunner)
    with app.app_context():
        jobs.signal(sample_jobs.LISTENED, queue="ledger")
        jobs.signal(sample_jobs.LISTENED, queue="ledger")  # coalesced with the waiting run
    assert runner.queue("ledger").count == 1
    _work_rq(app)
    assert _listened(app) == 1


def test_signals_during_a_run_coalesce_into_one_more_run(listening):
    app, loop = listening
    data_dir = app.config["CHOPAY"].data_dir
    (data_dir / sample_jobs.HOLD).touch()
    with app.app_context():
        jobs.signal(sample_jobs.LISTENED, queue="ledger")
        assert _wait_for(lambda: _listened(app) == 1)  # the first run has started, and waits
        for _ in range(5):  # commits made after that run read the database
            jobs.signal(sample_jobs.LISTENED, queue="ledger")
    (data_dir / sample_jobs.HOLD).unlink()
    assert _wait_for(lambda: _listened(app) == 2)
    time.sleep(0.3)
    assert _listened(app) == 2
    assert loop.runs == 2


def test_a_failed_run_is_logged_and_the_loop_goes_on(listening):
    app, loop = listening
    data_dir = app.config["CHOPAY"].data_dir
    (data_dir / sample_jobs.FAIL).touch()
    with capture_logs() as logs, app.app_context():
        jobs.signal(sample_jobs.LISTENED, queue="ledger")
        assert _wait_for(lambda: loop.runs == 1)
        assert _wait_for(lambda: any(r["msg"] == "listener run failed" for r in logs.named("chopay.jobs")))
    (data_dir / sample_jobs.FAIL).unlink()
    with app.app_context():
        jobs.signal(sample_jobs.LISTENED, queue="ledger")
    assert _wait_for(lambda: _listened(app) == 2)


def test_listener_channels_are_apart_for_each_redis_database(redis_url: str):
    from redis import Redis

    base = redis_url.rsplit("/", 1)[0]
    one, two = Redis.from_url(f"{base}/1"), Redis.from_url(f"{base}/2")
    assert jobs.wake_channel(one, sample_jobs.LISTENED) != jobs.wake_channel(two, sample_jobs.LISTENED)


def test_the_inline_runner_runs_a_listened_job_as_any_other(app: Flask):
    jobs.register_listener(app, jobs.Listener(sample_jobs.LISTENED, "ledger"))
    with app.app_context():
        jobs.signal(sample_jobs.LISTENED, queue="ledger")
    runner = jobs.runner(app)
    assert isinstance(runner, jobs.InlineRunner)
    assert runner.run_pending() == 1
    assert _listened(app) == 1


def test_the_ledger_registers_its_sequencer_as_a_listener_of_the_ledger_queue(app: Flask):
    assert [(lst.name, lst.queue) for lst in jobs.listeners(app)] == [
        ("payments.ledger.jobs.sequence", "ledger")
    ]
    assert 0 < jobs.listeners(app)[0].pace <= 0.1

"""With Redis and a real ``chopay worker``: every entry sealed within 2 x interval, even after a crash."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask

from chopay import create_app
from chopay.cli.keys import ensure_keys
from chopay.db import get_db
from payments.ledger import services, tree
from payments.ledger.domain import Posting, TransactionSpec
from tests.conftest import make_settings

from .serving import CHOPAY

INTERVAL = 1.0
# The worker is another process, sharing the database with the test: PostgreSQL only.
pytestmark = pytest.mark.postgresql_only


@pytest.fixture
def postgres_url(database_url: str) -> str:
    return database_url


@pytest.fixture
def app(postgres_url: str, redis_url: str, tmp_path: Path) -> Iterator[Flask]:
    settings = dataclasses.replace(
        make_settings(postgres_url, tmp_path), redis_url=redis_url, inline_jobs=False
    )
    ensure_keys(settings)
    application = create_app(dataclasses.replace(settings, checkpoint_interval=INTERVAL))
    with get_db(application).unit_of_work() as s:
        services.ensure_account(s, code="bank:settlement", kind="asset")
        services.ensure_account(s, code="equity:opening", kind="equity")
    yield application
    from chopay.models import metadata

    with get_db(application).engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            conn.execute(table.delete())
    get_db(application).engine.dispose()


@pytest.fixture
def start_worker(app: Flask, tmp_path: Path) -> Iterator[Callable[[], subprocess.Popen[bytes]]]:
    settings = app.config["CHOPAY"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHOPAY_")}
    env.update(
        CHOPAY_DATABASE_URL=settings.database_url,
        CHOPAY_REDIS_URL=str(settings.redis_url),
        CHOPAY_DATA_DIR=str(settings.data_dir),
        CHOPAY_KEYS_DIR=str(settings.keys_dir),
        CHOPAY_CHECKPOINT_INTERVAL=str(INTERVAL),
        CHOPAY_LOG_LEVEL="WARNING",
    )
    started: list[subprocess.Popen[bytes]] = []

    def start() -> subprocess.Popen[bytes]:
        with (tmp_path / f"worker-{len(started)}.log").open("wb") as log:
            proc = subprocess.Popen(
                [str(CHOPAY), "worker"], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def _post(app: Flask, key: str) -> None:
    with app.app_context(), get_db(app).unit_of_work() as s:
        services.post(
            s,
            TransactionSpec(
                key, "journal", "x", [Posting("bank:settlement", 1), Posting("equity:opening", -1)]
            ),
        )


def _sealed(app: Flask) -> int:
    with get_db(app).read_session() as s:
        last = tree.latest_checkpoint(s)
        return last.size if last is not None else 0


def _wait(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def test_every_entry_is_signed_within_two_intervals(app: Flask, start_worker):
    start_worker()
    _post(app, "warm-up")
    assert _wait(lambda: _sealed(app) == 1, timeout=60)  # the worker is up
    latencies = []
    total = 1
    for burst in range(3):
        for i in range(15):
            _post(app, f"b{burst}-{i}")
            total += 1
            time.sleep(0.03)
        committed_at = time.monotonic()
        assert _wait(lambda total=total: _sealed(app) >= total, timeout=30)
        latencies.append(time.monotonic() - committed_at)
    assert max(latencies) <= 2 * INTERVAL, latencies


def test_sealing_resumes_within_seconds_of_a_restart(app: Flask, start_worker, redis_url: str):
    worker = start_worker()
    _post(app, "before")
    assert _wait(lambda: _sealed(app) == 1, timeout=60)
    os.killpg(worker.pid, signal.SIGKILL)  # the worker dies
    worker.wait(timeout=10)
    for i in range(5):
        _post(app, f"during-{i}")
    from redis import Redis

    Redis.from_url(redis_url).flushdb()  # and the queue with its signals is lost too
    with get_db(app).read_session() as s:
        assert s.scalar(sa.text("SELECT count(*) FROM ledger_pending")) == 5
    restarted_at = time.monotonic()
    start_worker()
    assert _wait(lambda: _sealed(app) == 6, timeout=30)
    # Well before the 30 s sweep interval: the worker sweeps once as it starts.
    assert time.monotonic() - restarted_at < 10


def test_the_worker_takes_the_sequencer_signals_on_its_listening_thread(
    app: Flask, start_worker, redis_url: str
):
    from redis import Redis

    from chopay import jobs

    connection = Redis.from_url(redis_url)
    channel = jobs.wake_channel(connection, services.SEQUENCE_JOB)
    assert dict(connection.pubsub_numsub(channel)).get(channel.encode()) == 0
    start_worker()
    assert _wait(lambda: dict(connection.pubsub_numsub(channel)).get(channel.encode()) == 1, timeout=60)
    before = connection.zcard("rq:finished:ledger")
    for i in range(20):
        _post(app, f"listened-{i}")  # each commit signals the listener, not an rq job
    assert _wait(lambda: _sealed(app) == 20, timeout=30)
    # Only the sealing timer's own runs (a few a second) went through rq, not one per commit.
    assert connection.zcard("rq:finished:ledger") - before < 10

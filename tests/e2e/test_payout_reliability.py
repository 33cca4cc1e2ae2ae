"""Exactly once through faults, kill -9, and restarts of Redis and PostgreSQL (real processes).

Each scenario runs a batch on ``chopay worker`` processes against the simulator over HTTP,
then counts the transfers of every reference in the simulator's own database: exactly 1 for
each item with a valid destination, 0 for each dead one (which fails with its reason code);
the ledger verifies (``chopay ledger verify --database``) and the program's benefits equal
what the bank moved. Redis is always a private ``redis-server`` on its own port (scenario 3
restarts it); scenario 4 restarts a private PostgreSQL cluster made with ``initdb``. Others
use a schema of their own in the ``CHOPAY_TEST_DATABASE_URL`` database.

Sizes: ``CHOPAY_RELIABILITY_ITEMS`` (default 2,000) sets the batch of scenario 1; set it to
20000 for the full run of the issue.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from bench._payouts import PayoutRun, check_exactly_once, fresh_schema
from chopay.db import get_db
from disbursement.services import controls
from payments.rails.fakebank.process import Simulator
from tests.conftest import PG_URL

pytestmark = pytest.mark.skipif(
    not PG_URL or shutil.which("redis-server") is None,
    reason="needs CHOPAY_TEST_DATABASE_URL (PostgreSQL) and redis-server",
)
ITEMS = int(os.environ.get("CHOPAY_RELIABILITY_ITEMS", "2000"))
OPTIONS = {
    "payout_lease": 4.0,
    "payout_backoff": 0.2,
    "payout_max_attempts": 12,
    "sweep_interval": 2.0,
    "checkpoint_interval": 0.5,
}
DONE = {"completed", "completed_with_failures"}
PG_BIN = Path("/usr/lib/postgresql/15/bin")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PrivateRedis:
    """A redis-server of the test's own, without persistence, that can be restarted."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.start()

    def start(self) -> None:
        subprocess.run(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "yes",
            ],
            check=True,
            capture_output=True,
        )
        _wait(lambda: self._ping())

    def _ping(self) -> bool:
        return (
            subprocess.run(["redis-cli", "-p", str(self.port), "ping"], capture_output=True).returncode == 0
        )

    def stop(self) -> None:
        subprocess.run(["redis-cli", "-p", str(self.port), "shutdown", "nosave"], capture_output=True)
        _wait(lambda: not self._ping())


class PrivateCluster:
    """A PostgreSQL cluster of the test's own (initdb), on a free port, that can be restarted."""

    def __init__(self) -> None:
        # Outside pytest's own temporary tree, which only its owner may enter.
        directory = Path(tempfile.mkdtemp(prefix="chopay-pg-"))
        directory.chmod(0o755)
        self.directory = directory
        self.data = directory / "pgdata"
        self.port = _free_port()
        self.data.mkdir(mode=0o700)
        shutil.chown(self.data, "postgres", "postgres")
        self._pg("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres")
        self.log = directory / "pg.log"
        self.log.touch()
        shutil.chown(self.log, "postgres", "postgres")
        self.start()
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _pg(self, tool: str, *args: str) -> None:
        command = [str(PG_BIN / tool), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True)

    def start(self) -> None:
        options = f"-p {self.port} -k /tmp -c fsync=off -c max_connections=50"
        self._pg("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "start")

    def stop(self) -> None:
        self._pg("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def remove(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


def _wait(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError("condition not met")


@pytest.fixture
def redis() -> Iterator[PrivateRedis]:
    server = PrivateRedis()
    yield server
    server.stop()


@pytest.fixture
def simulators(tmp_path: Path) -> Iterator[Callable[..., Simulator]]:
    started: list[Simulator] = []

    def factory(*args: str) -> Simulator:
        live = Simulator.start(tmp_path, "--threads", "8", *args)
        started.append(live)
        return live

    yield factory
    for live in started:
        live.stop()


@pytest.fixture
def runs(tmp_path: Path) -> Iterator[Callable[..., PayoutRun]]:
    made: list[PayoutRun] = []

    def factory(database_url: str, redis_url: str, simulator: Simulator, **options: object) -> PayoutRun:
        run = PayoutRun(tmp_path, database_url, redis_url, simulator.url, {**OPTIONS, **options})
        made.append(run)
        return run

    yield factory
    for run in made:
        run.close()


def _schema(name: str) -> str:
    assert PG_URL is not None
    return fresh_schema(PG_URL, name)


def _paid_some(run: PayoutRun, batch_id: int, at_least: int) -> Callable[[], bool]:
    return lambda: sum(1 for i in run.items(batch_id) if i[2] == "paid") >= at_least


def _supervise(run: PayoutRun) -> Callable[[], None]:
    """Restart workers that exited (what systemd would do)."""

    def tick() -> None:
        for n, worker in enumerate(list(run.workers)):
            if worker.poll() is not None:
                run.workers[n] = run.start_worker()
                run.workers.pop()

    return tick


def _ready_batch(run: PayoutRun, items: int, bad_every: int) -> int:
    run.seed(items)
    for _ in range(2):
        run.start_worker()
    batch_id = run.upload(items, "2026-12", bad_every=bad_every)
    assert run.wait(batch_id, {"ready", "invalid"}, timeout=300) == "ready"
    return batch_id


def test_lost_answers_errors_and_settling_pay_each_person_once(
    redis: PrivateRedis, simulators: Callable[..., Simulator], runs: Callable[..., PayoutRun]
):
    bank = simulators("--drop-rate", "0.05", "--error-rate", "0.05", "--settle-ms", "200", "--seed", "7")
    run = runs(_schema("reliability_faults"), redis.url, bank)
    batch_id = _ready_batch(run, ITEMS, bad_every=50)
    run.approve(batch_id)
    assert run.wait(batch_id, DONE, timeout=max(300, ITEMS / 20)) == "completed_with_failures"
    figures = check_exactly_once(run, batch_id, bank.db, bad_every=50)
    assert figures["paid"] == ITEMS - ITEMS // 50


def test_kill_9_of_a_worker_five_times(
    redis: PrivateRedis, simulators: Callable[..., Simulator], runs: Callable[..., PayoutRun]
):
    bank = simulators("--latency-ms", "20", "--settle-ms", "50")
    run = runs(_schema("reliability_kill"), redis.url, bank, payout_chunk=100)
    items = 3000
    batch_id = _ready_batch(run, items, bad_every=100)
    run.approve(batch_id)
    for kill in range(5):
        _wait(_paid_some(run, batch_id, (kill + 1) * items // 8), timeout=120)
        run.kill_worker(kill % 2)
    assert run.wait(batch_id, DONE, timeout=300) == "completed_with_failures"
    check_exactly_once(run, batch_id, bank.db, bad_every=100)


def test_redis_restarted_mid_run(
    redis: PrivateRedis, simulators: Callable[..., Simulator], runs: Callable[..., PayoutRun]
):
    bank = simulators("--latency-ms", "20")
    run = runs(_schema("reliability_redis"), redis.url, bank, payout_chunk=100)
    items = 3000
    batch_id = _ready_batch(run, items, bad_every=100)
    run.approve(batch_id)
    _wait(_paid_some(run, batch_id, items // 4), timeout=120)
    redis.stop()  # every queued job and marker is lost with it
    time.sleep(3)
    redis.start()
    assert run.wait(batch_id, DONE, timeout=300, tick=_supervise(run)) == "completed_with_failures"
    check_exactly_once(run, batch_id, bank.db, bad_every=100)


def test_postgres_restarted_mid_run(
    redis: PrivateRedis, simulators: Callable[..., Simulator], runs: Callable[..., PayoutRun]
):
    if not (PG_BIN / "initdb").exists():
        pytest.skip(reason="needs PostgreSQL 15's initdb for a private cluster")
    cluster = PrivateCluster()
    try:
        bank = simulators("--latency-ms", "20")
        run = runs(fresh_schema(cluster.url, "reliability_pg"), redis.url, bank, payout_chunk=100)
        items = 3000
        batch_id = _ready_batch(run, items, bad_every=100)
        run.approve(batch_id)
        _wait(_paid_some(run, batch_id, items // 4), timeout=120)
        cluster.stop()
        time.sleep(2)
        cluster.start()
        get_db(run.app).engine.dispose()  # this process's pooled connections died with the server
        assert run.wait(batch_id, DONE, timeout=300, tick=_supervise(run)) == "completed_with_failures"
        check_exactly_once(run, batch_id, bank.db, bad_every=100)
        run.close()
    finally:
        cluster.stop()
        cluster.remove()


def test_insufficient_funds_midway_pauses_then_funding_and_resume_complete(
    redis: PrivateRedis, simulators: Callable[..., Simulator], runs: Callable[..., PayoutRun]
):
    items = 2000
    bank = simulators("--source-balance", str(items // 2 * 500_000))
    run = runs(_schema("reliability_funds"), redis.url, bank, payout_chunk=100)
    batch_id = _ready_batch(run, items, bad_every=100)
    run.approve(batch_id)
    assert run.wait(batch_id, {"paused", *DONE}, timeout=300) == "paused"
    statuses = [i[2] for i in run.items(batch_id)]
    assert "pending" in statuses
    assert all(i[3] != "insufficient_funds" for i in run.items(batch_id))
    assert not any(i[2] == "failed" and (i[0] % 100) for i in run.items(batch_id))  # only dead accounts fail
    with httpx.Client(base_url=bank.url) as admin:
        assert admin.post("/admin/fund", json={"amount": items * 500_000}).status_code == 200
    with run.app.app_context(), get_db(run.app).unit_of_work() as s:
        controls.resume(s, batch_id)
    assert run.wait(batch_id, DONE, timeout=300) == "completed_with_failures"
    check_exactly_once(run, batch_id, bank.db, bad_every=100)

"""A payout run on real processes, shared by ``bench/payouts.py`` and the reliability tests.

PostgreSQL (a schema of its own, or a private cluster), Redis, the bank simulator as a
gunicorn process (``chopay fakebank serve``, spoken to over HTTP through the payOS SDK) and
``chopay worker`` processes, which do everything after the upload: validation, execution,
sealing. This process uploads and approves, as the API would, and watches.

Destinations: beneficiary ``n``'s account is ``9`` and eleven digits of ``n``; every
``bad_every``-th row of a batch file instead names an account the simulator keeps in a
documented dead state (``...99991`` closed, ``...99993`` frozen, ``...99994`` not found), so
the expected failure of each item is known from its row.
"""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from chopay import create_app, migrate
from chopay.cli.keys import ensure_keys
from chopay.config import Settings, from_env
from chopay.crypto import data_keys
from chopay.db import get_db, make_engine
from chopay.users import create_user
from disbursement.models import Batch, PayoutItem
from disbursement.services import batches

BAD_ACCOUNTS = {"99991": "account_closed", "99993": "account_frozen", "99994": "account_not_found"}
PROGRAM = "BENCH"


def fresh_schema(server_url: str, schema: str) -> str:
    """Drop and re-create ``schema`` in the database of ``server_url``, migrate it, return its URL."""
    engine = make_engine(server_url)
    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    engine.dispose()
    joiner = "&" if "?" in server_url else "?"
    url = f"{server_url}{joiner}options=-csearch_path%3D{schema}"
    migrate.upgrade(url)
    return url


def bad_account(serial: int) -> tuple[str, str]:
    """Return the dead account and expected reason code used for row ``serial`` when it is bad."""
    suffix = list(BAD_ACCOUNTS)[serial % len(BAD_ACCOUNTS)]
    return f"9{serial:06d}{suffix}", BAD_ACCOUNTS[suffix]


DEAD_SUFFIXES = {
    "99991": "account_closed",
    "99992": "account_frozen",
    "99993": "account_frozen",
    "99994": "account_not_found",
}
"""The simulator's dead states by an account number's last five digits (dormant counts as frozen)."""


def expected_failure(serial: int, bad_every: int) -> str | None:
    """Return the reason row ``serial`` must fail with, or None if it must be paid.

    A bad row names a dead account; a registry account (``9`` and eleven digits of the serial)
    whose last five digits fall on a dead pattern (serial 99991, say) fails like one.
    """
    if bad_every and serial % bad_every == 0:
        return bad_account(serial)[1]
    return DEAD_SUFFIXES.get(f"9{serial:011d}"[-5:])


def write_batch(path: Path, rows: int, bad_every: int) -> int:
    """Write a batch CSV of beneficiaries 1..rows; return its total."""
    from bench.batches import BIN, national_id

    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["national_id", "full_name", "amount", "bin", "account_number"])
        for serial in range(1, rows + 1):
            bad = bad_every and serial % bad_every == 0
            account = bad_account(serial)[0] if bad else ""
            writer.writerow(
                [national_id(serial), f"Nguyễn Văn Test {serial}", 500_000, BIN if bad else "", account]
            )
    return rows * 500_000


@dataclass
class PayoutRun:
    """The processes and the database of one run."""

    tmp: Path
    database_url: str
    redis_url: str
    payout_url: str
    options: dict[str, Any] = field(default_factory=dict)
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.keys_dir = self.tmp / "keys"
        self.settings: Settings = from_env(
            {},
            **{
                "database_url": self.database_url,
                "redis_url": self.redis_url,
                "keys_dir": self.keys_dir,
                "data_dir": self.tmp,
                "log_level": "WARNING",
                "payout_url": self.payout_url,
                **self.options,
            },
        )
        ensure_keys(self.settings)
        self.app = create_app(self.settings)
        self.officer = self.approver = self.started = 0

    def env(self) -> dict[str, str]:
        """Return the environment of a ``chopay`` process of this run."""
        values = {
            "CHOPAY_DATABASE_URL": self.database_url,
            "CHOPAY_REDIS_URL": self.redis_url,
            "CHOPAY_KEYS_DIR": str(self.keys_dir),
            "CHOPAY_DATA_DIR": str(self.tmp),
            "CHOPAY_LOG_LEVEL": "WARNING",
            "CHOPAY_PAYOUT_URL": self.payout_url,
        }
        values |= {f"CHOPAY_{k.upper()}": str(v) for k, v in self.options.items()}
        return {**os.environ, **values}

    def seed(self, count: int) -> float:
        """Register and enrol ``count`` beneficiaries in program BENCH; return the seconds taken."""
        from bench.batches import seed

        self.officer, seconds = seed(self.app, count)
        with self.app.app_context(), get_db(self.app).unit_of_work() as s:
            self.approver = create_user(s, name="Bench approver", role="approver").user.id
        return seconds

    def start_worker(self) -> subprocess.Popen[bytes]:
        """Start one ``chopay worker`` process (its log beside the run)."""
        chopay = Path(sys.executable).with_name("chopay")
        self.started += 1
        with (self.tmp / f"worker-{self.started}.log").open("wb") as log:
            worker = subprocess.Popen(
                [str(chopay), "worker"], env=self.env(), stdout=log, stderr=subprocess.STDOUT
            )
        self.workers.append(worker)
        return worker

    def kill_worker(self, index: int) -> None:
        """Kill a worker with SIGKILL (no cleanup at all) and start another in its place."""
        victim = self.workers[index]
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=30)
        replacement = self.start_worker()
        self.workers[index] = replacement
        self.workers.pop()

    def stop_workers(self) -> None:
        """Stop every worker (SIGTERM, then SIGKILL after 20 s)."""
        for worker in self.workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
        for worker in self.workers:
            try:
                worker.wait(timeout=20)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait(timeout=10)

    def peak_rss_mb(self) -> float:
        """Return the largest peak RSS (VmHWM) among the running workers."""
        peaks = []
        for worker in self.workers:
            try:
                status = Path(f"/proc/{worker.pid}/status").read_text()
            except FileNotFoundError:
                continue
            for line in status.splitlines():
                if line.startswith("VmHWM:"):
                    peaks.append(int(line.split()[1]) / 1024)
        return round(max(peaks, default=0.0), 1)

    def upload(self, rows: int, period: str, bad_every: int = 0) -> int:
        """Upload a batch file of ``rows`` rows; its validation runs on the workers."""
        path = self.tmp / f"batch-{period}.csv"
        total = write_batch(path, rows, bad_every)
        with self.app.app_context(), get_db(self.app).unit_of_work() as s, path.open("rb") as fh:
            batch = batches.create(
                s,
                data_keys(self.app),
                program=PROGRAM,
                period=period,
                declared_count=rows,
                declared_total=total,
                created_by=self.officer,
                stream=fh,
                filename=path.name,
            )
            return batch.id

    def approve(self, batch_id: int) -> None:
        """Approve the batch as a second user; execution starts once this commits."""
        with self.app.app_context(), get_db(self.app).unit_of_work() as s:
            batches.approve(s, batch_id, user_id=self.approver, exclude_invalid=True, required=1)

    def status(self, batch_id: int) -> str:
        with get_db(self.app).read_session() as s:
            batch = s.get(Batch, batch_id)
            assert batch is not None
            return batch.status

    def wait(
        self, batch_id: int, done: set[str], timeout: float, tick: Callable[[], None] | None = None
    ) -> str:
        """Wait until the batch reaches one of ``done``; fail with the workers' logs after ``timeout``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                status = self.status(batch_id)
            except sa.exc.OperationalError:
                status = "unreachable"
            if status in done:
                return status
            if tick is not None:
                tick()
            time.sleep(0.25)
        logs = "\n".join(p.read_text(errors="replace")[-3000:] for p in sorted(self.tmp.glob("worker-*.log")))
        raise AssertionError(f"batch {batch_id} is still {status} after {timeout} s\n{logs}")

    def items(self, batch_id: int) -> list[tuple[int, str, str, str | None, int, str | None]]:
        """Return (serial, reference, status, reason_code, amount, bank_txn_id) of every item.

        The serial is the beneficiary's number: the file's row number less its header row.
        """
        with get_db(self.app).read_session() as s:
            return [
                tuple(r)  # type: ignore[misc]
                for r in s.execute(
                    sa.select(
                        PayoutItem.row_number - 1,
                        PayoutItem.reference,
                        PayoutItem.status,
                        PayoutItem.reason_code,
                        PayoutItem.amount,
                        PayoutItem.bank_txn_id,
                    )
                    .where(PayoutItem.batch_id == batch_id)
                    .order_by(PayoutItem.id)
                )
            ]

    def benefits(self) -> int:
        """Return the balance of the program's benefits account (what the ledger says was paid)."""
        from payments.ledger import services as ledger

        with get_db(self.app).read_session() as s:
            return ledger.balance(s, f"program:{PROGRAM}:benefits")

    def verify_ledger(self) -> subprocess.CompletedProcess[str]:
        """Run ``chopay ledger verify --database`` against the run's database."""
        chopay = Path(sys.executable).with_name("chopay")
        return subprocess.run(
            [str(chopay), "ledger", "verify", "--database"],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=600,
        )

    def close(self) -> None:
        self.stop_workers()
        get_db(self.app).engine.dispose()


def transfers_per_reference(simulator_db: Path) -> tuple[dict[str, int], int]:
    """Count the payout movements of each reference in the simulator's own database, and their sum."""
    engine = sa.create_engine(f"sqlite:///{simulator_db}")
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT reference, count(*), sum(amount) FROM transfers"
                " WHERE kind = 'payout' GROUP BY reference"
            )
        ).all()
    engine.dispose()
    return {ref: n for ref, n, _ in rows}, sum(int(a) for _, _, a in rows)


def check_exactly_once(run: PayoutRun, batch_id: int, simulator_db: Path, bad_every: int) -> dict[str, Any]:
    """Assert every valid item paid once, every bad one failed with its reason and never moved money."""
    moved, moved_amount = transfers_per_reference(simulator_db)
    items = run.items(batch_id)
    paid_amount = 0
    problems: list[str] = []
    for row, reference, status, reason, amount, _txn in items:
        expected = expected_failure(row, bad_every)
        bad = expected is not None
        count = moved.get(reference, 0)
        if bad and (status != "failed" or reason != expected or count != 0):
            problems.append(f"row {row}: {status} {reason} moved {count}, expected failed {expected}")
        if not bad and (status != "paid" or count != 1):
            problems.append(f"row {row}: {status} {reason} moved {count}, expected paid once")
        paid_amount += amount if status == "paid" else 0
    assert not problems, problems[:20]
    assert sum(moved.values()) == sum(1 for i in items if i[2] == "paid")
    assert run.benefits() == paid_amount == moved_amount  # the program's totals are the bank's
    verified = run.verify_ledger()
    assert verified.returncode == 0, verified.stdout + verified.stderr
    return {"items": len(items), "paid": sum(1 for i in items if i[2] == "paid"), "paid_amount": paid_amount}

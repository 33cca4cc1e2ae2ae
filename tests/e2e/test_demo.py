"""The demo a newcomer opens: what the seeding leaves behind, and ``chopay demo`` as a process.

The seeding runs against a real bank simulator process (``chopay fakebank serve``), on SQLite
and, with ``CHOPAY_TEST_DATABASE_URL``, on a PostgreSQL schema of its own. ``chopay demo`` runs
as an operator starts it: it prints the pages and tokens, serves, and on SIGINT stops chopay
and the simulator, leaving no process behind; started again, it reuses the directory.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from chopay import demo as seeding
from chopay.cli import main
from chopay.db import Database
from disbursement.models import Batch, Beneficiary, PayoutItem
from merchants.intake.models import Payment
from merchants.models import Merchant, PaymentIntent
from payments.rails.fakebank.process import Simulator
from payments.reconciliation.models import Reconciliation
from tests.conftest import NO_PG, PG_URL

CHOPAY = Path(sys.executable).with_name("chopay")
EXPECTED_FAILURES = {"50": "account_closed", "100": "account_frozen", "150": "account_not_found"}


@pytest.fixture(params=["sqlite", "postgresql"])
def demo_database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'var' / 'chopay.db'}"
    if not PG_URL:
        pytest.skip(reason=NO_PG)
    from bench._payouts import fresh_schema

    return fresh_schema(PG_URL, "demo_seed")


def _env(data_dir: Path, database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHOPAY_")}
    return env | {"CHOPAY_DATA_DIR": str(data_dir), "CHOPAY_DATABASE_URL": database_url}


def test_the_seeding_leaves_a_market_a_paid_batch_and_a_reconciliation(
    tmp_path: Path, demo_database: str
) -> None:
    data_dir = tmp_path / "var"
    with Simulator.start(tmp_path, "--source-balance", "0") as bank:
        settings = seeding.demo_settings(data_dir, bank.url, database_url=demo_database, log_level="WARNING")
        demo = seeding.seed(settings)
        with bank.admin() as admin:
            moved = admin.get("/admin/transfers").json()
    database = Database(demo_database)
    try:
        with database.read_session() as s:
            # 20 vendors, every one paid during the day; ten payments settled intents.
            vendors = s.scalars(sa.select(Merchant.id).where(Merchant.market_code == seeding.MARKET)).all()
            assert len(vendors) == 20
            per_vendor = dict(
                s.execute(sa.select(Payment.merchant_id, sa.func.count()).group_by(Payment.merchant_id)).all()
            )
            assert set(per_vendor) == set(vendors)
            assert sum(per_vendor.values()) == demo.payments
            intents = s.scalars(sa.select(PaymentIntent.status)).all()
            assert len(intents) == demo.intents_paid == 10
            assert set(intents) == {"paid"}
            # 200 beneficiaries; the batch paid all but the three dead accounts.
            assert s.scalar(sa.select(sa.func.count()).select_from(Beneficiary)) == 200
            batch = s.get(Batch, demo.batch)
            assert batch is not None
            assert batch.status == "completed_with_failures"
            items = s.execute(
                sa.select(PayoutItem.row_number, PayoutItem.status, PayoutItem.reason_code).where(
                    PayoutItem.batch_id == demo.batch
                )
            ).all()
            assert len(items) == 200
            failed = {str(row - 1): reason for row, status, reason in items if status == "failed"}
            assert failed == EXPECTED_FAILURES == demo.failures
            assert sum(1 for _r, status, _c in items if status == "paid") == 197
            # One reconciliation, done, of the bank's own statement.
            (rec,) = s.scalars(sa.select(Reconciliation)).all()
            assert rec.status == "done"
            assert rec.account == f"program:{seeding.PROGRAM}:budget"
            assert rec.item_count == 198  # the funding and 197 payouts
            assert rec.fully_explained is True
    finally:
        database.engine.dispose()
    assert moved["references_paid_more_than_once"] == []
    assert set(demo.tokens) == set(seeding.ROLES)
    assert demo.receipt
    assert seeding.Demo.load(data_dir) == demo
    assert oct((data_dir / seeding.STATE_FILE).stat().st_mode & 0o777) == "0o600"
    verified = subprocess.run(
        [str(CHOPAY), "ledger", "verify", "--database"],
        env=_env(data_dir, demo_database),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr


def _children(pid: int) -> list[int]:
    """Return the pids whose parent is ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.fixture
def started(tmp_path: Path) -> Iterator[list[subprocess.Popen[str]]]:
    procs: list[subprocess.Popen[str]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def _run_demo(
    data_dir: Path, started: list[subprocess.Popen[str]], *args: str
) -> tuple[subprocess.Popen[str], str]:
    """Start ``chopay demo`` and read its output up to the last line of its banner."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CHOPAY_", "FAKEBANK_"))}
    proc = subprocess.Popen(
        [str(CHOPAY), "demo", "--data-dir", str(data_dir), "--port", "0", "--bank-port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        start_new_session=True,
    )
    started.append(proc)
    assert proc.stdout is not None
    out = ""
    deadline = time.monotonic() + 300
    while "Ctrl-C stops both processes." not in out:
        line = proc.stdout.readline()
        assert line, f"chopay demo ended early:\n{out}"
        out += line
        assert time.monotonic() < deadline, out
    return proc, out


def _sign_in(browser: httpx.Client, token: str) -> httpx.Response:
    form = browser.get("/login").text
    csrf = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', form)
    assert csrf, form
    return browser.post("/login", data={"csrf_token": csrf[1], "token": token})


def _stop_demo(proc: subprocess.Popen[str]) -> str:
    children = _children(proc.pid)
    assert len(children) == 2  # chopay serve and the bank simulator
    proc.send_signal(signal.SIGINT)
    rest, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, rest
    assert "stopped" in rest
    assert not [pid for pid in children if _alive(pid)]
    return rest


def test_chopay_demo_serves_prints_pages_and_tokens_and_stops_on_sigint(
    tmp_path: Path, started: list[subprocess.Popen[str]]
) -> None:
    data_dir = tmp_path / "demo"
    proc, out = _run_demo(data_dir, started)
    assert "(seeded now)" in out
    base = re.search(r"serving on (http://127\.0\.0\.1:\d+)", out)
    bank = re.search(r"bank simulator: (http://127\.0\.0\.1:\d+)", out)
    assert base, out
    assert bank, out
    for path in ("/login", "/audit", "/batches", "/m/m_", "/markets/CHO-THU", "/r/", "/docs"):
        assert f"{base[1]}{path}" in out, path
    tokens = dict(re.findall(r"^    (admin|officer|approver|auditor|merchant) +(cp_\S+)$", out, re.M))
    assert set(tokens) == set(seeding.ROLES)
    assert httpx.get(f"{base[1]}/healthz", timeout=10).status_code == 200
    for role, token in tokens.items():
        me = httpx.get(f"{base[1]}/v1/users/me", headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert me.status_code == 200, (role, me.text)
        assert me.json()["role"] == role
    # The printed pages open for the role each is for, after signing in with its printed token.
    pages = dict(re.findall(r"^    (\S.*?) {2,}(http://\S+)$", out, re.M))
    for role, what in [
        ("merchant", "vendor poster"),
        ("merchant", "vendor live page"),
        ("officer", "market figures"),
        ("officer", "the paid batch"),
        ("auditor", "ledger audit"),
        ("auditor", "reconciliation"),
    ]:
        with httpx.Client(base_url=base[1], timeout=10) as browser:
            assert _sign_in(browser, tokens[role]).status_code == 303, role
            assert browser.get(pages[what]).status_code == 200, (role, what, pages[what])
    _stop_demo(proc)
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{base[1]}/healthz", timeout=5)
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{bank[1]}/admin/connectors", timeout=5)

    # Started again, the directory is reused as it was: the same tokens still sign in.
    proc, again = _run_demo(data_dir, started)
    assert "(reused: pass --fresh to start again)" in again
    assert "seeding" not in again
    assert (
        dict(re.findall(r"^    (admin|officer|approver|auditor|merchant) +(cp_\S+)$", again, re.M)) == tokens
    )
    _stop_demo(proc)


def test_fresh_refuses_a_directory_that_holds_other_files(tmp_path: Path) -> None:
    data_dir = tmp_path / "not-a-demo"
    data_dir.mkdir()
    (data_dir / "notes.txt").write_text("keep me")
    result = CliRunner().invoke(main, ["demo", "--data-dir", str(data_dir), "--fresh"])
    assert result.exit_code == 1
    assert "holds files a demo does not make (notes.txt)" in result.output
    assert (data_dir / "notes.txt").read_text() == "keep me"


def test_sigint_while_seeding_stops_the_simulator_and_leaves_no_finished_demo(
    tmp_path: Path, started: list[subprocess.Popen[str]]
) -> None:
    data_dir = tmp_path / "demo"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CHOPAY_", "FAKEBANK_"))}
    proc = subprocess.Popen(
        [str(CHOPAY), "demo", "--data-dir", str(data_dir), "--port", "0", "--bank-port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        start_new_session=True,
    )
    started.append(proc)
    assert proc.stdout is not None
    first = proc.stdout.readline()
    assert first.startswith("seeding a new demo"), first
    children = _children(proc.pid)
    assert len(children) == 1  # the simulator; chopay serve starts after the seeding
    proc.send_signal(signal.SIGINT)
    rest, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, rest
    assert "interrupted" in rest
    assert not _alive(children[0])
    assert not (data_dir / seeding.STATE_FILE).exists()

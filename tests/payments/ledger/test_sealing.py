"""Sealing: no run waits for the interval, no signal is lost, every entry is signed within 2 x interval."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Iterator

import pytest
import sqlalchemy as sa
from flask import Flask

from chopay import jobs
from chopay.cli.keys import ensure_keys
from chopay.db import get_db
from payments.ledger import audit, keys, sequencer, services, tree
from payments.ledger import jobs as ledger_jobs
from payments.ledger.domain import Posting, TransactionSpec
from tests.conftest import make_settings


def _spec(key: str) -> TransactionSpec:
    return TransactionSpec(
        key, "journal", "seal me", [Posting("bank:settlement", 5), Posting("equity:opening", -5)]
    )


def _open_accounts(app: Flask) -> None:
    with get_db(app).unit_of_work() as s:
        services.ensure_account(s, code="bank:settlement", kind="asset")
        services.ensure_account(s, code="equity:opening", kind="equity")


def _post(app: Flask, key: str) -> None:
    with app.app_context(), get_db(app).unit_of_work() as s:
        services.post(s, _spec(key))


def _sealed(app: Flask) -> int:
    with get_db(app).read_session() as s:
        last = tree.latest_checkpoint(s)
        return last.size if last is not None else 0


def _committed(app: Flask) -> int:
    with get_db(app).read_session() as s:
        return int(s.execute(sa.text("SELECT count(*) FROM ledger_transactions")).scalar() or 0)


@pytest.fixture
def interval_app(database_url, tmp_path) -> Iterator[Callable[[float], Flask]]:
    """Return a factory of apps that really commit, with a given checkpoint interval."""
    made: list[Flask] = []

    def factory(interval: float, **extra: object) -> Flask:
        settings = make_settings(database_url, tmp_path, **extra)
        ensure_keys(settings)
        app = __import__("chopay").create_app(dataclasses.replace(settings, checkpoint_interval=interval))
        made.append(app)
        _open_accounts(app)
        return app

    yield factory
    from chopay.models import metadata

    for app in made:
        database = get_db(app)
        with database.engine.begin() as conn:
            for table in reversed(metadata.sorted_tables):
                conn.execute(table.delete())
        database.engine.dispose()


def test_a_run_too_soon_for_a_checkpoint_returns_at_once_and_blocks_no_writer(interval_app):
    app = interval_app(30.0)
    _post(app, "first")
    with app.app_context():
        ledger_jobs.sequence()
    assert _sealed(app) == 1  # no checkpoint before: the first one is signed at once
    _post(app, "second")
    done = threading.Event()

    def writer() -> None:
        _post(app, "concurrent")
        done.set()

    with app.app_context():
        started = time.monotonic()
        ledger_jobs.sequence()  # sequences, finds the checkpoint not due, and returns
        took = time.monotonic() - started
        threading.Thread(target=writer).start()
        assert done.wait(5)
    assert took < 2.0  # it did not wait out the 30 s interval
    assert _sealed(app) == 1
    with get_db(app).read_session() as s:
        assert tree.current_size(s) == 2  # sequenced, though not yet sealed


def test_a_run_right_after_this_process_signed_skips_the_checkpoint_transaction(interval_app, monkeypatch):
    app = interval_app(30.0)
    _post(app, "first")
    with app.app_context():
        ledger_jobs.sequence()
    assert _sealed(app) == 1
    _post(app, "second")
    tried: list[int] = []
    monkeypatch.setattr(sequencer, "checkpoint", lambda *a, **k: tried.append(1))
    with app.app_context():
        ledger_jobs.sequence()
    assert tried == []  # signed here less than an interval ago: nothing to ask the database
    with get_db(app).read_session() as s:
        assert tree.current_size(s) == 2  # the entry is sequenced all the same
    monkeypatch.setattr(ledger_jobs, "_SIGNED_AT", type(ledger_jobs._SIGNED_AT)())
    with app.app_context():
        ledger_jobs.sequence()
    assert tried == [1]  # a process that did not sign it asks


def test_the_backlog_says_when_a_run_is_due(interval_app):
    app = interval_app(1.0)
    with get_db(app).read_session() as s:
        assert not sequencer.backlog(s).due(1.0)  # nothing at all
    _post(app, "a")
    with get_db(app).read_session() as s:
        backlog = sequencer.backlog(s)
    assert (backlog.pending, backlog.due(1.0)) == (1, True)  # committed, not sequenced
    with app.app_context():
        ledger_jobs.sequence()
    _post(app, "b")
    with app.app_context(), get_db(app).unit_of_work() as s:
        sequencer.sequence(s)
    with get_db(app).read_session() as s:
        backlog = sequencer.backlog(s)
    assert (backlog.pending, backlog.unsealed) == (0, 1)
    assert not backlog.due(3600.0)  # the checkpoint is younger than the interval
    assert backlog.due(0.0)


def test_the_audit_reports_what_no_checkpoint_covers_yet(interval_app):
    app = interval_app(3600.0)
    for key in ("a", "b", "c"):
        _post(app, key)
    with app.app_context():
        ledger_jobs.sequence()
    _post(app, "sequenced-only")
    with app.app_context(), get_db(app).unit_of_work() as s:
        sequencer.sequence(s)
    _post(app, "committed-only")
    settings = app.config["CHOPAY"]
    with get_db(app).read_session() as s:
        result = audit.verify_database(s, keys.trusted_verifiers(settings))
    assert result.ok
    assert (result.size, result.unsealed, result.pending) == (3, 1, 1)
    text = result.describe()
    assert text.startswith("OK: 3 entries")
    assert "not yet sealed: 2 committed entries are not covered by a signed checkpoint" in text


def _wait(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def test_with_the_in_process_runner_every_entry_is_signed_within_two_intervals(interval_app):
    interval = 1.0
    app = interval_app(interval)
    runner = jobs.runner(app)
    assert isinstance(runner, jobs.InlineRunner)
    runner.start()
    try:
        latencies = []
        for burst in range(3):
            for i in range(20):
                _post(app, f"burst-{burst}-{i}")
                time.sleep(0.02)
            committed_at = time.monotonic()
            total = _committed(app)
            assert _wait(lambda total=total: _sealed(app) >= total, timeout=10 * interval)
            latencies.append(time.monotonic() - committed_at)
    finally:
        runner.stop()
        assert runner.join(timeout=10)
    assert max(latencies) <= 2 * interval, latencies

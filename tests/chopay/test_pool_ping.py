"""Pooled PostgreSQL connections are pinged only after a rest, and replaced when they died."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from chopay import db
from chopay.db import make_engine

pytestmark = pytest.mark.postgresql_only


def _pings(engine: sa.Engine) -> list[str]:
    seen: list[str] = []

    @sa.event.listens_for(engine, "checkout")
    def _count(dbapi_connection, record, proxy) -> None:
        seen.append("checkout")

    original = engine.dialect.do_ping

    def counting(dbapi_connection) -> bool:
        seen.append("ping")
        return original(dbapi_connection)

    engine.dialect.do_ping = counting  # type: ignore[method-assign]
    return seen


def test_a_connection_back_from_work_a_moment_ago_is_not_pinged(database_url):
    engine = make_engine(database_url)
    try:
        seen = _pings(engine)
        for _ in range(3):
            with engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
        # The new connection is pinged once; the two checkouts right after its return are not.
        assert seen.count("ping") == 1
        assert seen.count("checkout") == 3
    finally:
        engine.dispose()


def test_a_rested_connection_that_died_is_replaced_before_use(database_url, monkeypatch):
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            pid = conn.execute(sa.text("SELECT pg_backend_pid()")).scalar()
        other = make_engine(database_url)
        with other.connect() as killer:
            killer.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        other.dispose()
        monkeypatch.setattr(db, "PING_AFTER_IDLE", 0.0)  # both have rested long enough now
        for _ in range(2):
            with engine.connect() as conn:
                assert conn.execute(sa.text("SELECT pg_backend_pid()")).scalar() != pid
    finally:
        engine.dispose()

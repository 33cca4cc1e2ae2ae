"""Shared fixtures, in the style of Flask's tutorial: ``app``, ``client``, ``runner``.

Every database test runs on SQLite and, when ``CHOPAY_TEST_DATABASE_URL`` is set, again on
PostgreSQL. The schema comes from the Alembic migrations. Each test runs inside a
connection-level transaction that is rolled back afterwards; sessions join it through
savepoints, so units of work commit (release their savepoint) as they do in production.

Tests that need real commits from several threads use ``committed_app`` instead, which talks
to the database through its own pool and empties the tables afterwards.

PostgreSQL databases named by ``CHOPAY_TEST_DATABASE_URL`` are wiped: point it at a scratch
database only.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import settings as hypothesis_settings
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker

from chopay import create_app, migrate
from chopay.config import Settings, from_env
from chopay.db import get_db, make_engine
from chopay.models import metadata as schema_metadata
from chopay.users import create_user

# Speed is measured by the benchmarks under bench/, not by tests: on a shared CI machine a
# per-example deadline only makes property tests fail at random.
hypothesis_settings.register_profile("chopay", deadline=None)
hypothesis_settings.load_profile("chopay")

PG_URL = os.environ.get("CHOPAY_TEST_DATABASE_URL")
REDIS_URL = os.environ.get("CHOPAY_TEST_REDIS_URL")
NO_PG = "CHOPAY_TEST_DATABASE_URL is not set: PostgreSQL runs are skipped"
NO_REDIS = "CHOPAY_TEST_REDIS_URL is not set: Redis-backed job tests are skipped"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Leave out the SQLite variant of tests marked ``postgresql_only`` (rather than skip it).

    Such a test needs what only a server gives (row locks, a second process on the same
    database); its PostgreSQL variant still skips, with the reason, when no server is configured.
    """
    kept, dropped = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        sqlite = callspec is not None and callspec.params.get("database_url") == "sqlite"
        (dropped if sqlite and item.get_closest_marker("postgresql_only") else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


def _reset_postgres(url: str) -> None:
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA public CASCADE"))
        conn.execute(sa.text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """Return the URL of a migrated test database for each backend."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'chopay-test.db'}"
    else:
        if not PG_URL:
            pytest.skip(reason=NO_PG)
        url = PG_URL
        _reset_postgres(url)
    migrate.upgrade(url)
    return url


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    """Return one engine per backend for the whole run."""
    eng = make_engine(database_url)
    yield eng
    eng.dispose()


@pytest.fixture
def connection(engine: Engine) -> Iterator[Connection]:
    """Open a connection whose outer transaction is rolled back after the test."""
    with engine.connect() as conn:
        trans = conn.begin()
        yield conn
        trans.rollback()


def make_settings(database_url: str, tmp_path: Path, **extra: Any) -> Settings:
    """Return settings for a test app using ``database_url`` and a temporary data dir."""
    return from_env(
        {},
        database_url=database_url,
        data_dir=tmp_path,
        keys_dir=tmp_path / "keys",
        inline_jobs=True,
        log_level="WARNING",
        **extra,
    )


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return make_settings(database_url, tmp_path)


@pytest.fixture
def app(settings: Settings, connection: Connection) -> Iterator[Flask]:
    """Create an app whose sessions all join the test's rolled-back transaction."""
    application = create_app(settings)
    application.config["TESTING"] = True
    get_db(application).bind_to(connection)
    yield application
    # Probes such as /readyz use the app's own engine; close what they opened.
    get_db(application).engine.dispose()


@pytest.fixture
def committed_app(database_url: str, tmp_path: Path) -> Iterator[Flask]:
    """Create an app that really commits (for multi-threaded tests); empty the tables afterwards."""
    application = create_app(make_settings(database_url, tmp_path))
    application.config["TESTING"] = True
    yield application
    database = get_db(application)
    metadata = schema_metadata
    with database.engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            conn.execute(table.delete())
    database.engine.dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def session(app: Flask) -> Iterator[Session]:
    """Return a session joined to the test transaction."""
    factory: sessionmaker[Session] = get_db(app).sessionmaker
    with factory() as s:
        yield s


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """Return a CLI runner whose ``chopay`` commands use a fresh data directory."""
    monkeypatch.setenv("CHOPAY_DATA_DIR", str(tmp_path / "var"))
    for name in ("CHOPAY_DATABASE_URL", "CHOPAY_REDIS_URL", "CHOPAY_KEYS_DIR"):
        monkeypatch.delenv(name, raising=False)
    return CliRunner()


@pytest.fixture
def make_token(app: Flask) -> Callable[..., str]:
    """Return a factory creating a user with a role and returning its token."""

    def factory(role: str = "admin", name: str | None = None, merchant_id: int | None = None) -> str:
        with get_db(app).unit_of_work() as s:
            return create_user(s, name=name or f"Test {role}", role=role, merchant_id=merchant_id).token

    return factory


@pytest.fixture
def admin_headers(make_token: Callable[..., str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {make_token('admin')}"}


@pytest.fixture
def redis_url() -> str:
    """Return the test Redis URL, emptied, or skip."""
    if not REDIS_URL:
        pytest.skip(reason=NO_REDIS)
    from redis import Redis

    Redis.from_url(REDIS_URL).flushdb()
    return REDIS_URL


@pytest.fixture
def empty_connection(database_url: str, engine: Engine, tmp_path: Path) -> Iterator[Connection]:
    """Return a connection to an empty database of the backend under test.

    SQLite gets a new file. PostgreSQL gets a new schema, first on the search path, inside a
    transaction that is rolled back afterwards (PostgreSQL's DDL is transactional), so the
    shared test database is left as it was.
    """
    if database_url.startswith("sqlite"):
        fresh = make_engine(f"sqlite:///{tmp_path / 'empty.db'}")
        with fresh.connect() as conn:
            yield conn
        fresh.dispose()
        return
    schema = f"empty_{uuid.uuid4().hex[:12]}"
    with engine.connect() as conn:
        trans = conn.begin()
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        conn.execute(sa.text(f'SET LOCAL search_path TO "{schema}"'))
        yield conn
        trans.rollback()

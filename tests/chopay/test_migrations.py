"""Alembic migrations build the schema from empty, and the models do not drift from them."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine

from chopay import migrate
from chopay.db import make_engine
from chopay.models import metadata as schema_metadata


def _head() -> str:
    head = ScriptDirectory.from_config(migrate.alembic_config("sqlite://")).get_current_head()
    assert head is not None
    return head


def _tables(conn: Connection) -> set[str]:
    return set(sa.inspect(conn).get_table_names())


def test_upgrade_from_empty_builds_every_table(empty_connection: Connection):
    assert _tables(empty_connection) == set()
    command.upgrade(migrate.alembic_config("unused://", connection=empty_connection), "head")
    metadata = schema_metadata
    assert _tables(empty_connection) == set(metadata.tables) | {"alembic_version"}
    assert MigrationContext.configure(empty_connection).get_current_revision() == _head()
    # Autogenerate against the freshly migrated database finds nothing to do.
    assert compare_metadata(MigrationContext.configure(empty_connection), metadata) == []


def test_models_do_not_drift_from_the_migrated_test_database(engine: Engine):
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), schema_metadata)
    assert diff == []


def test_current_returns_the_head(database_url: str):
    assert migrate.current(database_url) == _head()


def test_current_of_an_empty_database_is_none(tmp_path: Path):
    missing = tmp_path / "missing-dir" / "nothing.db"
    assert migrate.current(f"sqlite:///{missing}") is None
    assert not missing.parent.exists()  # asking created nothing
    empty = tmp_path / "empty.db"
    eng = make_engine(f"sqlite:///{empty}")
    with eng.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE unrelated (x INTEGER)")
    eng.dispose()
    assert migrate.current(f"sqlite:///{empty}") is None


def test_upgrade_is_idempotent_and_can_go_down_and_up(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'cycle.db'}"
    migrate.upgrade(url)
    migrate.upgrade(url)
    assert migrate.current(url) == _head()
    command.downgrade(migrate.alembic_config(url), "base")
    assert migrate.current(url) is None
    migrate.upgrade(url)
    assert migrate.current(url) == _head()


def test_sqlite_connections_use_wal_foreign_keys_and_a_busy_timeout(tmp_path: Path):
    eng = make_engine(f"sqlite:///{tmp_path / 'pragmas.db'}")
    try:
        with eng.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
    finally:
        eng.dispose()

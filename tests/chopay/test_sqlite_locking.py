"""On SQLite, readers take snapshots and never hold the write lock; writers lock up front."""

from __future__ import annotations

import time

import sqlalchemy as sa

from chopay import migrate
from chopay.db import Database
from chopay.users import create_user


def test_an_open_read_does_not_block_a_writer(tmp_path):
    url = f"sqlite:///{tmp_path / 'lock.db'}"
    migrate.upgrade(url)
    database = Database(url)
    try:
        with database.read_session() as reader:
            assert reader.scalar(sa.text("SELECT count(*) FROM users")) == 0
            assert reader.in_transaction()
            started = time.monotonic()
            with database.unit_of_work() as writer:
                create_user(writer, name="Officer Nguyen Van A", role="officer")
            assert time.monotonic() - started < 5  # the busy timeout is 30 s
            # The reader still sees its snapshot until it ends its transaction.
            assert reader.scalar(sa.text("SELECT count(*) FROM users")) == 0
        with database.read_session() as later:
            assert later.scalar(sa.text("SELECT count(*) FROM users")) == 1
    finally:
        database.engine.dispose()

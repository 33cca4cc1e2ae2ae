"""The simulator's own SQLite schema (SQLAlchemy Core, its own metadata; no Alembic).

The bank keeps nothing of chopay's: accounts, money movements, payouts as the payOS
protocol sees them, idempotency keys, the connectors it notifies and the outbox of
notifications. The schema is created on open; a simulator database is disposable.

Exactly-once is enforced here, not only in code: a payout transaction's ``reference_id``
is unique, and a money movement of kind ``payout`` is written only in the database
transaction that inserts that row. ``transfers`` has no unique constraint on its
reference, so ``GET /admin/transfers?reference=`` really counts what moved.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from chopay.db import UTCDateTime, make_engine

metadata = sa.MetaData()

Money = sa.BigInteger

accounts = sa.Table(
    "accounts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("bin", sa.String(6), nullable=False),
    sa.Column("number", sa.String(19), nullable=False),
    sa.Column("holder_name", sa.String(100), nullable=False),
    sa.Column("status", sa.String(10), nullable=False),
    sa.Column("balance", Money, nullable=False),
    sa.Column("opening_balance", Money, nullable=False),
    sa.Column("allow_negative", sa.Boolean, nullable=False, default=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("bin", "number", name="uq_accounts_bin_number"),
    sa.CheckConstraint("status IN ('active', 'closed', 'dormant', 'frozen')", name="ck_accounts_status"),
    sa.CheckConstraint("allow_negative OR balance >= 0", name="ck_accounts_balance"),
)

transfers = sa.Table(
    "transfers",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("kind", sa.String(10), nullable=False),  # payout | return | incoming | funding
    sa.Column("from_account", sa.Integer, sa.ForeignKey("accounts.id"), nullable=False),
    sa.Column("to_account", sa.Integer, sa.ForeignKey("accounts.id"), nullable=False),
    sa.Column("amount", Money, nullable=False),
    sa.Column("from_balance", Money, nullable=False),  # balances after the movement
    sa.Column("to_balance", Money, nullable=False),
    sa.Column("reference", sa.String(40), nullable=True),
    sa.Column("description", sa.String(200), nullable=False),
    sa.Column("payer_name", sa.String(100), nullable=True),
    sa.Column("booked_at", UTCDateTime, nullable=False),
    sa.CheckConstraint("amount > 0", name="ck_transfers_amount"),
    sa.Index("ix_transfers_reference", "reference"),
    sa.Index("ix_transfers_from", "from_account", "id"),
    sa.Index("ix_transfers_to", "to_account", "id"),
)

payouts = sa.Table(
    "payouts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("public_id", sa.String(32), nullable=False, unique=True),
    sa.Column("reference_id", sa.String(64), nullable=False, unique=True),
    sa.Column("kind", sa.String(6), nullable=False),  # single | batch
    sa.Column("body_hash", sa.String(64), nullable=False),
    sa.Column("category", sa.JSON, nullable=True),
    sa.Column("item_refs", sa.JSON, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

payout_transactions = sa.Table(
    "payout_transactions",
    metadata,
    # The protocol's transaction id is derived from this id (see payouts.transaction_id).
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("reference_id", sa.String(64), nullable=False, unique=True),
    sa.Column("payout_id", sa.Integer, sa.ForeignKey("payouts.id"), nullable=False),
    sa.Column("amount", Money, nullable=False),
    sa.Column("description", sa.String(200), nullable=False),
    sa.Column("to_bin", sa.String(6), nullable=False),
    sa.Column("to_account_number", sa.String(19), nullable=False),
    sa.Column("to_account_name", sa.String(100), nullable=True),
    sa.Column("content_hash", sa.String(64), nullable=False),
    sa.Column("final_state", sa.String(10), nullable=False),  # SUCCEEDED | FAILED | REVERSED
    sa.Column("error_code", sa.String(40), nullable=True),
    sa.Column("error_message", sa.String(200), nullable=True),
    sa.Column("transfer_id", sa.Integer, sa.ForeignKey("transfers.id"), nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("settle_at", UTCDateTime, nullable=False),
)

idempotency_keys = sa.Table(
    "idempotency_keys",
    metadata,
    sa.Column("key", sa.String(200), primary_key=True),
    sa.Column("body_hash", sa.String(64), nullable=False),
    sa.Column("payout_id", sa.Integer, sa.ForeignKey("payouts.id"), nullable=False),
)

connectors = sa.Table(
    "connectors",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("format", sa.String(8), nullable=False),
    sa.Column("secret", sa.String(200), nullable=False),
    sa.Column("url", sa.String(500), nullable=True),
)

notifications = sa.Table(
    "notifications",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("transfer_id", sa.Integer, sa.ForeignKey("transfers.id"), nullable=False),
    sa.Column("connector", sa.String(64), nullable=False),
    sa.Column("format", sa.String(8), nullable=False),
    sa.Column("body", sa.LargeBinary, nullable=False),
    sa.Column("late_s", sa.Integer, nullable=False, default=0),
    sa.Column("status", sa.String(10), nullable=False),  # pending | delivered | failed
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("next_attempt_at", UTCDateTime, nullable=False),
    sa.Column("lease_until", UTCDateTime, nullable=True),
    sa.Column("last_status", sa.Integer, nullable=True),
    sa.Column("last_error", sa.String(300), nullable=True),
    sa.Column("delivered_at", UTCDateTime, nullable=True),
    sa.Index("ix_notifications_due", "status", "next_attempt_at"),
)


def sqlite_time(moment: dt.datetime) -> str:
    """Return ``moment`` as SQLAlchemy stores a UTC DateTime in SQLite (what UTCDateTime reads)."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def parse_sqlite_time(text: str) -> dt.datetime:
    """Read back what :func:`sqlite_time` (or the Core type) stored."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


def bulk_insert(conn: Connection, table: sa.Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert many rows through the driver's executemany.

    Batches of hundreds of rows are the simulator's hot path; going around SQLAlchemy's
    per-row parameter processing makes a 500-transfer payout several times cheaper. Values
    are stored exactly as the Core types would store them (datetimes via :func:`sqlite_time`).
    """
    if not rows:
        return
    names = list(rows[0])
    placeholders = ", ".join("?" for _ in names)
    sql = f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({placeholders})"
    times: dict[dt.datetime, str] = {}  # a batch's rows share a few instants; format each once

    def stored(value: Any) -> Any:
        if isinstance(value, dt.datetime):
            if value not in times:
                times[value] = sqlite_time(value)
            return times[value]
        return int(value) if isinstance(value, bool) else value

    conn.exec_driver_sql(sql, [tuple(stored(row[n]) for n in names) for row in rows])


def bulk_update_balances(conn: Connection, balances: Mapping[int, int]) -> None:
    """Set many accounts' balances at once."""
    conn.exec_driver_sql(
        "UPDATE accounts SET balance = ? WHERE id = ?", [(v, k) for k, v in balances.items()]
    )


def select_in(
    conn: Connection, sql: str, values: Sequence[Any], *, prefix: tuple[Any, ...] = ()
) -> list[Any]:
    """Run ``sql`` (ending in ``IN``) for every value, in slices under SQLite's variable limit.

    ``prefix`` binds the placeholders that come before the ``IN`` list. Only for columns
    stored as plain SQL values (not datetimes, which Core would convert).
    """
    out: list[Any] = []
    for start in range(0, len(values), 900):
        part = values[start : start + 900]
        marks = ", ".join("?" for _ in part)
        out.extend(conn.exec_driver_sql(f"{sql} ({marks})", (*prefix, *part)).all())
    return out


def next_id(conn: Connection, table: sa.Table) -> int:
    """Return the next free id; writers are serialised (BEGIN IMMEDIATE), so it stays free."""
    return int(conn.execute(sa.select(sa.func.max(table.c.id))).scalar() or 0) + 1


def open_db(path: Path | str) -> Engine:
    """Open (creating if needed) a simulator database file and return its engine."""
    file = Path(path)
    file.parent.mkdir(parents=True, exist_ok=True)
    engine = make_engine(f"sqlite:///{file.resolve()}")

    @sa.event.listens_for(engine, "connect")
    def _cache(dbapi_connection: Any, _record: Any) -> None:
        # A million-transfer run outgrows SQLite's 2 MB default page cache many times over.
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA cache_size=-131072")
        cursor.execute("PRAGMA mmap_size=1073741824")
        cursor.execute("PRAGMA temp_store=MEMORY")
        cursor.close()

    metadata.create_all(engine)
    return engine

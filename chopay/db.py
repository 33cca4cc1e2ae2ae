"""Database engine, declarative base, and the unit of work.

SQLite (the embedded default) runs in WAL mode with foreign keys on, a busy timeout, and
``BEGIN IMMEDIATE`` transactions: taking the write lock up front means a transaction never
fails half-way when it upgrades from reading to writing. PostgreSQL goes through psycopg 3.

The caller owns the transaction. Services take a session, do their work and flush; they never
commit. Whoever opened the session commits it once:

* a request: views use :func:`session`; the request commits it after the view when the answer
  is a success (status < 400) and rolls it back otherwise, so an error leaves no partial write;
* a job or a command: ``with unit_of_work() as s:`` commits when the block ends and rolls back
  if it raises.

Work that must wait for the commit (enqueueing a job, publishing an event) is registered with
:func:`after_commit`; it runs once the data is durable, and a failure there is logged, never
turned into an error for a caller whose data is already committed.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Annotated, Any, cast

import sqlalchemy as sa
from flask import Flask, Response, current_app, g, has_request_context, request
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Session, mapped_column, sessionmaker

log = logging.getLogger("chopay.db")

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> dt.datetime:
    """Return the current time as an aware UTC datetime."""
    return dt.datetime.now(dt.UTC)


class UTCDateTime(sa.types.TypeDecorator[dt.datetime]):
    """Store aware datetimes; SQLite drops the zone, so restore UTC on the way out."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: sa.Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; pass an aware UTC datetime")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: dt.datetime | None, dialect: sa.Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


# Largest value of a BIGINT column. Bigger integers from a client (a path id, a cursor, a
# reference) must be refused as input before they reach the driver, which cannot bind them.
MAX_ID = 2**63 - 1

intpk = Annotated[int, mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True)]
Money = Annotated[int, mapped_column(sa.BigInteger)]
Timestamp = Annotated[dt.datetime, mapped_column(UTCDateTime)]
CreatedAt = Annotated[dt.datetime, mapped_column(UTCDateTime, default=utcnow)]


class Base(DeclarativeBase):
    """Declarative base of every chopay model."""

    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {
        dt.datetime: UTCDateTime,
        int: sa.BigInteger().with_variant(sa.Integer, "sqlite"),
        dict[str, Any]: sa.JSON,
    }


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine with the settings chopay relies on for ``url``'s backend."""
    # Statement parameters are client values (names, references, amounts): they never go into an
    # exception message, and so never into a log line or a traceback.
    kwargs.setdefault("hide_parameters", True)
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": 30, "check_same_thread": False}, **kwargs)
        _tune_sqlite(engine)
        return engine
    # Custom plans only: psycopg prepares a statement run five times on a connection, and
    # PostgreSQL then keeps one generic plan for it. A plan made while a table was small (a new
    # deployment's first minutes) scans that table whole for every lookup of its idempotency
    # keys once it has grown, until autovacuum analyzes it. Planning each execution costs tens
    # of microseconds; the parse is still saved.
    given = sa.engine.make_url(url).query.get("options", ())  # the URL's own (a search_path): kept
    options = [given] if isinstance(given, str) else list(given)
    connect_args = {"options": " ".join([*options, "-c plan_cache_mode=force_custom_plan"])}
    engine = sa.create_engine(url, pool_size=10, max_overflow=20, connect_args=connect_args, **kwargs)
    _ping_when_idle(engine)
    return engine


PING_AFTER_IDLE = 2.0
"""Seconds a pooled connection may rest before it is pinged on its next checkout."""


def _ping_when_idle(engine: Engine) -> None:
    """Ping a pooled connection before use when it has rested a while, not on every checkout.

    ``pool_pre_ping`` costs one more round trip on every unit of work, and a request has two
    (its authentication and its own). A connection handed back less than ``PING_AFTER_IDLE``
    seconds ago worked then; should it have broken since (a server restart), its first
    statement fails as a disconnect, and SQLAlchemy then discards every pooled connection
    so that the next units of work reconnect. A connection that rested longer, the usual victim
    of an idle timeout or a restart, is pinged, and replaced if the ping fails.
    """
    dbapi_error = engine.dialect.loaded_dbapi.Error

    @event.listens_for(engine, "checkin")
    def _rest(_dbapi_connection: Any, record: Any) -> None:
        record.info["chopay.rested_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _check(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        rested_at = record.info.pop("chopay.rested_at", None)
        if rested_at is not None and time.monotonic() - rested_at < PING_AFTER_IDLE:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except dbapi_error as exc:
            raise sa.exc.DisconnectionError("the pooled connection no longer answers") from exc


def _tune_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not pysqlite, decide when transactions begin (needed for savepoints).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        # Readers take a snapshot without blocking anyone (WAL); writers take the lock up front.
        conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get("read_only") else "BEGIN IMMEDIATE")


class Database:
    """The engine and session factories of one app.

    ``read_sessionmaker`` serves requests that only read (GET, HEAD, long exports): on SQLite
    its transactions are deferred snapshots that never hold the write lock.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.sessionmaker: sessionmaker[Session] = sessionmaker(self.engine, expire_on_commit=False)
        reads = self.engine.execution_options(read_only=True)
        self.read_sessionmaker: sessionmaker[Session] = sessionmaker(reads, expire_on_commit=False)
        self._single_reads = (
            self.engine.execution_options(isolation_level="AUTOCOMMIT")
            if self.engine.dialect.name == "postgresql"
            else reads
        )

    @contextmanager
    def session(self) -> Iterator[Session]:
        """Open a session that the caller commits itself; close it afterwards."""
        with self.sessionmaker() as s:
            yield s

    @contextmanager
    def unit_of_work(self) -> Iterator[Session]:
        """Open a session, commit it once when the block ends, roll it back if the block raises."""
        with self.sessionmaker() as s, s.begin():
            yield s

    @contextmanager
    def read_session(self) -> Iterator[Session]:
        """Open a session for reading only; close it afterwards."""
        with self.read_sessionmaker() as s:
            yield s

    @contextmanager
    def read_connection(self) -> Iterator[sa.Connection]:
        """Open a connection for one short read outside any unit of work; give it back after.

        On PostgreSQL it runs in autocommit: a single SELECT needs no BEGIN and no ROLLBACK,
        two round trips fewer. On SQLite it reads a deferred snapshot, as a read session does.
        Under :meth:`bind_to` it reads through the bound connection, in the test's transaction.
        """
        bound = self.read_sessionmaker.kw.get("bind")
        if isinstance(bound, sa.Connection):
            with self.read_session() as s:
                yield s.connection()
            return
        with self._single_reads.connect() as conn:
            yield conn

    def bind_to(self, connection: sa.Connection) -> None:
        """Make every session join ``connection``'s transaction through savepoints (tests)."""
        for factory in (self.sessionmaker, self.read_sessionmaker):
            factory.configure(bind=connection, join_transaction_mode="create_savepoint")

    def ping(self) -> None:
        """Run a trivial query; raise if the database does not answer.

        It goes through the DBAPI connection so that no transaction begins: on SQLite every
        transaction takes the write lock (``BEGIN IMMEDIATE``), and a probe must neither wait
        behind a writer for the busy timeout nor hold writers up.
        """
        conn = self.engine.raw_connection()
        try:
            cursor = conn.cursor()
            cursor.execute("SELECT 1")
            cursor.fetchall()
            cursor.close()
        finally:
            conn.close()


def bulk_insert(session: Session, model: type[Base], rows: list[dict[str, Any]]) -> None:
    """Insert many rows, keyed by column name, in the session's transaction (see copy_rows)."""
    if not rows:
        return
    columns = tuple(rows[0])
    with copy_rows(session, model, columns) as write:
        for row in rows:
            write(tuple(row[c] for c in columns))


@contextmanager
def copy_rows(
    session: Session, model: type[Base], columns: Sequence[str]
) -> Iterator[Callable[[Sequence[Any]], None]]:
    """Yield a function that adds one row (values in ``columns`` order) to ``model``'s table.

    On PostgreSQL the rows stream through ``COPY``: psycopg's executemany still sends one
    INSERT per row, and a multi-row statement costs more to build in Python than to run, while
    COPY lets the server insert rows as the caller produces them. Elsewhere the rows are
    inserted with executemany when the block ends. Callers that need new ids take them first
    with :func:`reserve_ids`.
    """
    table = cast(sa.Table, model.__table__)
    bind = session.get_bind()
    if bind.dialect.name != "postgresql":
        rows: list[dict[str, Any]] = []
        yield lambda values: rows.append(dict(zip(columns, values, strict=True)))
        if rows:
            session.execute(table.insert(), rows)
        return
    import psycopg

    json_at = [i for i, c in enumerate(columns) if isinstance(table.c[c].type, sa.JSON)]
    driver = session.connection().connection.driver_connection
    statement = f"COPY {table.name} ({', '.join(columns)}) FROM STDIN"
    try:
        with driver.cursor() as cursor, cursor.copy(statement) as copy:  # type: ignore[union-attr]
            if json_at:

                def write(values: Sequence[Any]) -> None:
                    row = list(values)
                    for i in json_at:
                        row[i] = json.dumps(row[i])
                    copy.write_row(row)

                yield write
            else:
                yield copy.write_row
    except psycopg.IntegrityError as exc:
        # Raw COPY bypasses SQLAlchemy's error wrapping; callers catch one exception type.
        raise IntegrityError(statement, None, exc, hide_parameters=True) from exc


def reserve_ids(session: Session, model: type[Base], count: int) -> list[int]:
    """Return ``count`` new primary keys for ``model`` (PostgreSQL: from its id sequence)."""
    table = cast(sa.Table, model.__table__)
    if session.get_bind().dialect.name == "postgresql":
        return list(
            session.scalars(
                sa.text("SELECT nextval(pg_get_serial_sequence(:t, 'id')) FROM generate_series(1, :n)"),
                {"t": table.name, "n": count},
            )
        )
    # SQLite writers are serialised (BEGIN IMMEDIATE), so the next ids are max(id) + 1 onwards.
    start = session.scalar(sa.select(sa.func.coalesce(sa.func.max(table.c.id), 0))) or 0
    return list(range(start + 1, start + 1 + count))


_AFTER_COMMIT = "chopay.after_commit"


def after_commit(session: Session, callback: Callable[[], object]) -> None:
    """Run ``callback`` once ``session``'s transaction has committed; drop it on rollback.

    A callback registered twice in one transaction runs once.
    """
    callbacks: list[Callable[[], object]] = session.info.setdefault(_AFTER_COMMIT, [])
    if callback not in callbacks:
        callbacks.append(callback)


@event.listens_for(Session, "after_commit")
def _run_after_commit(session: Session) -> None:
    for callback in session.info.pop(_AFTER_COMMIT, []):
        try:
            callback()
        except Exception:
            # The data is committed; what follows (a job signal, an event) is recovered by the
            # sweeps, so the caller must not be told that its write failed.
            log.exception("after-commit task failed", extra={"task": getattr(callback, "__name__", "?")})


@event.listens_for(Session, "after_rollback")
def _drop_after_commit(session: Session) -> None:
    session.info.pop(_AFTER_COMMIT, None)


@contextmanager
def unit_of_work(database: Database | None = None) -> Iterator[Session]:
    """Open one unit of work on ``database`` (the current app's by default) and commit it once."""
    with (database or get_db()).unit_of_work() as s:
        yield s


def init_app(app: Flask, database: Database) -> None:
    """Attach ``database`` to ``app``; commit or roll back each request's session once."""
    app.extensions["chopay.db"] = database

    # Registered after the logging and metrics hooks, so it runs before them: what they record
    # is the answer after the commit (a failed commit becomes a 500).
    @app.after_request
    def _end_unit_of_work(response: Response) -> Response:
        s: Session | None = g.get("chopay_session")
        if s is not None and s.in_transaction():
            if response.status_code < 400:
                s.commit()
            else:
                s.rollback()
        return response

    @app.teardown_appcontext
    def _close_session(_exc: BaseException | None) -> None:
        s: Session | None = g.pop("chopay_session", None)
        if s is not None:
            s.close()


def get_db(app: Flask | None = None) -> Database:
    """Return the database of ``app`` (the current app by default)."""
    target = app if app is not None else current_app
    db: Database = target.extensions["chopay.db"]
    return db


def has_open_work() -> bool:
    """Tell whether the current request or app context has begun a transaction in its session.

    A view that writes only one thing can then have it committed on its own (the ledger's group
    commit, say) when nothing else of the request waits to be committed with it.
    """
    s: Session | None = g.get("chopay_session")
    return s is not None and s.in_transaction()


def session() -> Session:
    """Return the session of the current request or app context, opening it on first use.

    GET and HEAD requests get a read-only session.
    """
    s: Session | None = g.get("chopay_session")
    if s is None:
        database = get_db()
        reading = has_request_context() and request.method in {"GET", "HEAD"}
        s = (database.read_sessionmaker if reading else database.sessionmaker)()
        g.chopay_session = s
    return s

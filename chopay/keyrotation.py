"""Rotation of the data-encryption key: a new active key, then every value re-encrypted under it.

``chopay keys rotate-data`` adds a key to ``data-keys.json`` and makes it the active one; the
old keys stay, so every stored value stays readable throughout. It records the rotation in
``data_key_rotations``, and the job :func:`reencrypt` then walks every column declared with
``chopay.crypto.protected_column`` (the registry that features fill when their models are
imported), in primary-key order, a batch at a time, each batch in its own unit of work:

* a value is re-encrypted only if it is not under the active key yet, so a run that was
  interrupted (a crash, a deploy) resumes where it stopped, and a second run changes nothing;
* the update is conditional on the old ciphertext (``WHERE pk = ... AND col = old``): a value
  that the application rewrote meanwhile is left as it now is, never overwritten by a stale copy;
* a value that does not open under any key is counted and left untouched, never dropped.

A sweep runs the job while a rotation is unfinished, so ``chopay serve`` (in-process jobs)
and ``chopay worker`` (Redis) both finish it in the background. Blind indexes use a separate
key and are not affected: lookups work throughout.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import Flask, current_app
from sqlalchemy.orm import Mapped, Session, mapped_column

from chopay.crypto import (
    DATA_KEYS_FILE,
    PROTECTED_COLUMNS,
    DataKeyError,
    DataKeys,
    ProtectedColumn,
    data_keys,
)
from chopay.db import Base, CreatedAt, Database, get_db, utcnow
from chopay.jobs import Sweep

log = logging.getLogger("chopay.keyrotation")

JOB = "chopay.keyrotation.reencrypt"
BATCH = 1000


class DataKeyRotation(Base):
    __tablename__ = "data_key_rotations"

    key_id: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    requested_at: Mapped[CreatedAt]
    finished_at: Mapped[dt.datetime | None]
    reencrypted: Mapped[int] = mapped_column(default=0)
    unreadable: Mapped[int] = mapped_column(default=0)


def add_key(keys_dir: Path) -> DataKeys:
    """Add a fresh data key to the key file and make it active; keep the others. Return the new set."""
    path = keys_dir / DATA_KEYS_FILE
    current = DataKeys.load(path)
    number = 1 + max((int(k[1:]) for k in current.keys if k[1:].isdigit()), default=0)
    kid = f"d{number}"
    rotated = DataKeys(kid, {**current.keys, kid: secrets.token_bytes(32)}, current.index_key)
    fd, tmp = tempfile.mkstemp(dir=keys_dir, prefix=".data-keys-")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(rotated.dump() + "\n")
        os.replace(tmp, path)  # atomic: a reader sees the old file or the new one, never half
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return rotated


def request(session: Session, key_id: str) -> DataKeyRotation:
    """Record that values must be re-encrypted under ``key_id``."""
    found = session.get(DataKeyRotation, key_id)
    if found is None:
        found = DataKeyRotation(key_id=key_id)
        session.add(found)
        session.flush()
    return found


def unfinished(session: Session) -> DataKeyRotation | None:
    """Return the latest rotation that is not finished yet, if any."""
    return session.scalar(
        sa.select(DataKeyRotation)
        .where(DataKeyRotation.finished_at.is_(None))
        .order_by(DataKeyRotation.requested_at.desc())
        .limit(1)
    )


def _table(column: ProtectedColumn) -> sa.Table:
    import chopay.models  # noqa: F401  (every model module registers its tables and columns)

    return Base.metadata.tables[column.table]


@dataclass
class Progress:
    """What one pass over a column did."""

    reencrypted: int = 0
    unreadable: int = 0
    last: tuple[Any, ...] | None = None
    done: bool = False


def reencrypt_batch(
    session: Session,
    keys: DataKeys,
    column: ProtectedColumn,
    after: tuple[Any, ...] | None,
    limit: int = BATCH,
) -> Progress:
    """Re-encrypt up to ``limit`` values of ``column`` not under the active key, after key ``after``."""
    table = _table(column)
    pk = list(table.primary_key.columns)
    value = table.c[column.column]
    stmt = (
        sa.select(*pk, value)
        .where(value.is_not(None), value.not_like(f"{keys.active}:%"))
        .order_by(*pk)
        .limit(limit)
    )
    if after is not None:
        stmt = stmt.where(sa.tuple_(*pk) > sa.tuple_(*after)) if len(pk) > 1 else stmt.where(pk[0] > after[0])
    rows = session.execute(stmt).all()
    progress = Progress(done=len(rows) < limit)
    for row in rows:
        key = tuple(row[: len(pk)])
        old = row[len(pk)]
        progress.last = key
        try:
            plaintext = keys.decrypt(old, column.context)
        except DataKeyError:
            progress.unreadable += 1
            continue
        where = [c == k for c, k in zip(pk, key, strict=True)] + [value == old]
        session.execute(
            sa.update(table).where(*where).values({column.column: keys.encrypt(plaintext, column.context)})
        )
        progress.reencrypted += 1
    return progress


def run(database: Database, keys: DataKeys, *, batch: int = BATCH) -> Progress:
    """Re-encrypt every protected column under ``keys.active``, one unit of work per batch."""
    total = Progress()
    for column in list(PROTECTED_COLUMNS):
        after: tuple[Any, ...] | None = None
        unreadable = 0
        while True:
            with database.unit_of_work() as s:
                step = reencrypt_batch(s, keys, column, after, batch)
            total.reencrypted += step.reencrypted
            unreadable += step.unreadable
            after = step.last
            if step.done:
                break
        total.unreadable += unreadable
        if unreadable:
            log.warning(
                "values that open under no data key were left as they are",
                extra={"table": column.table, "column": column.column, "count": unreadable},
            )
    with database.unit_of_work() as s:
        for rotation in s.scalars(sa.select(DataKeyRotation).where(DataKeyRotation.finished_at.is_(None))):
            rotation.finished_at = utcnow()
            rotation.reencrypted += total.reencrypted
            rotation.unreadable += total.unreadable
    total.done = True
    return total


def key_counts(session: Session) -> dict[str, dict[str, int]]:
    """Count the values of every protected column per key id (``table.column`` -> kid -> n)."""
    out: dict[str, dict[str, int]] = {}
    for column in PROTECTED_COLUMNS:
        table = _table(column)
        value = table.c[column.column]
        if session.get_bind().dialect.name == "sqlite":
            kid = sa.func.substr(value, 1, sa.func.instr(value, ":") - 1)
        else:
            kid = sa.func.split_part(value, ":", 1)
        rows = session.execute(sa.select(kid, sa.func.count()).where(value.is_not(None)).group_by(kid))
        out[f"{column.table}.{column.column}"] = {str(k): int(n) for k, n in rows}
    return out


def reencrypt() -> None:
    """Job: finish any unfinished data-key rotation for the current app."""
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    database = get_db(app)
    with database.read_session() as s:
        if unfinished(s) is None:
            return
    run(database, data_keys(app))


def _due() -> bool:
    with get_db().read_session() as s:
        return unfinished(s) is not None


SWEEP = Sweep(JOB, due=_due)

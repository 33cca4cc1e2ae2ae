"""Jobs of disbursement: the validation of a batch, and the sweep that resumes stalled ones.

``validate_batch(batch_id)`` streams the batch's upload twice: once for the control totals
(every data row and its amount, before any row is checked), then for the row checks, a chunk
of ``validation.CHUNK`` rows per unit of work. It is safe to run twice and to kill at any
point: a run holds the batch's lease, resumes after the last committed chunk, and a run that
lost its lease stops. ``resume_validations`` (a sweep) re-enqueues every batch still
validating whose lease has expired: the job of a worker killed with SIGKILL, or lost with Redis.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from itertools import islice

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from chopay import jobs
from chopay.crypto import DataKeys, data_keys
from chopay.db import Database, get_db, utcnow
from disbursement import uploads
from disbursement.domain import BatchStatus
from disbursement.files import FileProblem, Row, open_table
from disbursement.models import Batch
from disbursement.services import validation

log = logging.getLogger("chopay.disbursement")

VALIDATE = "disbursement.jobs.validate_batch"
RESUME = "disbursement.jobs.resume_validations"


def _chunks(rows: Iterator[Row], size: int) -> Iterator[list[Row]]:
    while chunk := list(islice(rows, size)):
        yield chunk


def _timed(rows: Iterator[Row], phases: dict[str, float] | None) -> Iterator[Row]:
    """Yield ``rows``, adding the time spent reading them to ``phases["parse"]``."""
    if phases is None:
        yield from rows
        return
    while True:
        started = time.perf_counter()
        row = next(rows, None)
        phases["parse"] = phases.get("parse", 0.0) + time.perf_counter() - started
        if row is None:
            return
        yield row


def validate_batch(
    batch_id: int, chunk: int = validation.CHUNK, phases: dict[str, float] | None = None
) -> None:
    """Validate a batch's upload: control totals, then every row; resume where a run stopped.

    ``phases``, when given, collects the seconds spent reading the file (``totals``, ``parse``),
    checking rows against the database (``checks``) and writing (``writes``, ``commit``).
    """
    database = get_db()
    keys = data_keys()
    owner = uuid.uuid4().hex
    with database.unit_of_work() as s:
        batch = validation.claim(s, batch_id, owner)
        if batch is None:
            return
        upload_id, checked, first_row = (
            batch.upload_id,
            batch.rows_checked,
            1 if batch.format == "json" else 2,
        )
        totals_done = batch.file_count is not None
    started = time.perf_counter()
    try:
        if upload_id is None:
            raise FileProblem("file_missing", "The uploaded file is gone; upload the batch again.")
        with uploads.open_upload(database, keys, upload_id) as stream:
            if not totals_done:
                clock = time.perf_counter()
                totals = validation.count(open_table(stream, validation.COLUMNS, first_row=first_row))
                if phases is not None:
                    phases["totals"] = time.perf_counter() - clock
                with database.unit_of_work() as s:
                    if not validation.record_totals(s, batch_id, owner, totals):
                        return
                stream.seek(0)
            rows = _timed(iter(open_table(stream, validation.COLUMNS, first_row=first_row)), phases)
            for _ in islice(rows, checked):
                pass  # rows a previous run has checked and committed
            with database.read_session() as s:
                seen = validation.seen_so_far(s, batch_id)
            for part in _chunks(rows, chunk):
                seen.add(_check(database, keys, batch_id, owner, part, seen, phases))
        with database.unit_of_work() as s:
            done = validation.finish(s, batch_id, owner)
        log.info(
            "batch validated",
            extra={
                "batch_id": batch_id,
                "status": done.status,
                "seconds": round(time.perf_counter() - started, 2),
            },
        )
    except FileProblem as exc:
        with database.unit_of_work() as s:
            validation.fail(s, batch_id, owner, exc)
    except validation.LeaseLost:
        log.info("batch validation handed over to another run", extra={"batch_id": batch_id})


def _check(
    database: Database,
    keys: DataKeys,
    batch_id: int,
    owner: str,
    part: list[Row],
    seen: validation.Seen,
    phases: dict[str, float] | None,
) -> list[int]:
    """Check one chunk in its own unit of work; redo it once if a concurrent batch took a key first."""
    for attempt in (1, 2):
        try:
            clock = time.perf_counter()
            with database.unit_of_work() as s:
                named = validation.check_chunk(s, keys, batch_id, owner, part, seen, phases)
                committing = time.perf_counter()
            if phases is not None:
                phases["commit"] = phases.get("commit", 0.0) + time.perf_counter() - committing
                phases["chunks"] = phases.get("chunks", 0.0) + time.perf_counter() - clock
            return named
        except IntegrityError:
            # The entitlement index refused an item: another batch claimed the same key after
            # our lookup. The retry's lookup sees it and reports the row as already in a batch.
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def resume_validations() -> None:
    """Sweep: re-enqueue the validation of every validating batch whose lease has expired."""
    with get_db().read_session() as s:
        stalled = list(
            s.scalars(
                sa.select(Batch.id).where(
                    Batch.status == BatchStatus.VALIDATING,
                    sa.or_(Batch.lease_until.is_(None), Batch.lease_until < utcnow()),
                )
            )
        )
    for batch_id in stalled:
        jobs.enqueue(VALIDATE, batch_id)


SWEEPS = (jobs.Sweep(RESUME), jobs.Sweep("disbursement.execution.resume_payouts", "payouts"))

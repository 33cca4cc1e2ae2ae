"""Payout batches: upload, approval (maker-checker) and rejection.

An upload is checked as far as it can be at once (the program, the file's format and header),
stored encrypted, and validated by a job after the request commits; a refused upload writes
nothing. Approval is lock, check, mutate: the batch row is locked, then the rules are checked
(a ready batch, an approver who is not its creator, invalid rows explicitly excluded, one
approval per person), then the approval is recorded, and the last approval needed fixes the
items: each gets its reference, and the batch records a digest of the item set (reference,
amount, destination) that later edits of the registry cannot change.
"""

from __future__ import annotations

import hashlib
import io
from itertools import islice
from typing import IO, Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from chopay import db, jobs
from chopay.crypto import DataKeys
from chopay.db import MAX_ID, utcnow
from disbursement import domain, uploads
from disbursement.domain import BatchStatus, ItemStatus
from disbursement.errors import (
    ApprovalConflict,
    ApprovalRefused,
    BatchNotFound,
    BatchStateConflict,
    FileRejected,
    ProgramNotActive,
)
from disbursement.files import FileProblem, csv_bytes, detect_format, open_table
from disbursement.models import Approval, Batch, PayoutItem, Program
from disbursement.services import programs, validation
from disbursement.services.validation import COLUMNS

VALIDATE_JOB = "disbursement.jobs.validate_batch"
START_JOB = "disbursement.execution.start_batch"
REFERENCE_PAGE = 10_000
PROBE_ROWS = 2000
_UNPAID = (ItemStatus.PENDING.value, ItemStatus.SENDING.value)
_COMMITTED = (
    BatchStatus.APPROVED,
    BatchStatus.RUNNING,
    BatchStatus.PAUSED,
    BatchStatus.COMPLETED_WITH_FAILURES,
)


def create(
    session: Session,
    keys: DataKeys,
    *,
    program: str,
    period: str,
    declared_count: int,
    declared_total: int,
    created_by: int,
    stream: IO[bytes] | None = None,
    items: list[dict[str, Any]] | None = None,
    filename: str | None = None,
) -> Batch:
    """Store an upload as a new batch in ``validating`` and ask for its validation."""
    found = programs.get_program(session, program)
    if found.status != domain.ProgramStatus.ACTIVE:
        raise ProgramNotActive(f"Program {program} is {found.status}; it takes no batches.")
    first_row = 2
    if items is not None:
        stream, fmt, first_row = io.BytesIO(csv_bytes(COLUMNS.known, items)), "json", 1
    assert stream is not None
    try:
        head = stream.read(8)
        stream.seek(0)
        fmt = "json" if items is not None else detect_format(head)
        table = open_table(stream, COLUMNS, first_row=first_row)
        for _ in islice(table, PROBE_ROWS):
            pass  # most files that cannot be read fail in their first rows: say so at once
    except FileProblem as exc:
        raise FileRejected(exc.message, code=exc.code, row=exc.row, column=exc.column) from None
    stream.seek(0)
    upload = uploads.store(session, keys, stream, fmt=fmt, filename=filename, created_by=created_by)
    batch = Batch(
        program_id=found.id,
        period=period,
        format=fmt,
        filename=filename,
        upload_id=upload.id,
        declared_count=declared_count,
        declared_total=declared_total,
        warnings=[{"code": w.code, "message": w.message} for w in table.warnings],
        created_by=created_by,
    )
    session.add(batch)
    session.flush()
    db.after_commit(session, lambda: jobs.enqueue(VALIDATE_JOB, batch.id))
    return batch


def get(session: Session, batch_id: int, *, lock: bool = False) -> Batch:
    """Return a batch or raise BatchNotFound."""
    found = session.get(Batch, batch_id, with_for_update=lock) if 1 <= batch_id <= MAX_ID else None
    if found is None:
        raise BatchNotFound(f"No batch with id {batch_id}.")
    return found


def search(
    session: Session,
    *,
    program_id: int | None = None,
    period: str | None = None,
    status: str | None = None,
    after: int | None = None,
    limit: int = 50,
) -> list[Batch]:
    """Return batches, newest first, before the cursor id."""
    stmt = sa.select(Batch).order_by(Batch.id.desc()).limit(limit)
    if program_id is not None:
        stmt = stmt.where(Batch.program_id == program_id)
    if period is not None:
        stmt = stmt.where(Batch.period == period)
    if status is not None:
        stmt = stmt.where(Batch.status == status)
    if after is not None:
        stmt = stmt.where(Batch.id < after)
    return list(session.scalars(stmt))


def approvals(session: Session, batch_id: int) -> list[Approval]:
    """Return a batch's approvals in the order they were given."""
    return list(
        session.scalars(
            sa.select(Approval).where(Approval.batch_id == batch_id).order_by(Approval.created_at)
        )
    )


def approve(session: Session, batch_id: int, *, user_id: int, exclude_invalid: bool, required: int) -> Batch:
    """Record one approval; the ``required``-th distinct approver makes the batch approved, once."""
    batch = get(session, batch_id, lock=True)
    if batch.status != BatchStatus.READY:
        if batch.approved_at is not None:
            raise BatchStateConflict(f"Batch {batch_id} is already approved.", code="batch_already_approved")
        raise BatchStateConflict(
            f"Batch {batch_id} is {batch.status}; only a ready batch can be approved.", code="batch_not_ready"
        )
    if batch.created_by == user_id:
        raise ApprovalRefused("Whoever created a batch cannot approve it; another approver must.")
    if batch.rows_invalid and not exclude_invalid:
        raise ApprovalConflict(
            f"The batch has {batch.rows_invalid:,} invalid rows. Approve with exclude_invalid: true to "
            "pay the valid rows only, or reject it.",
            code="invalid_rows_not_excluded",
            rows_invalid=batch.rows_invalid,
        )
    try:
        with session.begin_nested():
            session.add(
                Approval(
                    batch_id=batch.id,
                    user_id=user_id,
                    exclude_invalid=exclude_invalid,
                    rows_invalid=batch.rows_invalid,
                    created_at=utcnow(),
                )
            )
    except IntegrityError:
        raise ApprovalConflict(
            "You have approved this batch already.", code="already_approved_by_you"
        ) from None
    given = session.scalar(
        sa.select(sa.func.count()).select_from(Approval).where(Approval.batch_id == batch.id)
    )
    if (given or 0) >= required:
        _check_budget(session, batch)
        assign_references(session, batch.id)
        batch.items_digest = items_digest(session, batch.id)
        batch.status = domain.batch_transition(batch.status, BatchStatus.APPROVED)
        batch.approved_at = batch.updated_at = utcnow()
        approved_id = batch.id
        db.after_commit(session, lambda: jobs.enqueue(START_JOB, approved_id, queue="payouts"))
    session.flush()
    return batch


def _check_budget(session: Session, batch: Batch) -> None:
    """Refuse to commit the program to more than its budget holds."""
    program = session.get(Program, batch.program_id)
    assert program is not None
    committed = session.scalar(
        sa.select(sa.func.coalesce(sa.func.sum(PayoutItem.amount), 0))
        .join(Batch, Batch.id == PayoutItem.batch_id)
        .where(
            PayoutItem.program_id == batch.program_id,
            PayoutItem.status.in_(_UNPAID),
            Batch.status.in_([s.value for s in _COMMITTED]),
        )
    )
    balance = programs.budget_balance(session, program.code)
    needed = int(committed or 0) + batch.amount_valid
    if needed > balance:
        raise ApprovalConflict(
            f"The budget of {program.code} holds {balance:,} dong; approved batches not yet paid "
            f"need {int(committed or 0):,} and this one {batch.amount_valid:,}. Fund the program first.",
            code="budget_insufficient",
            budget=balance,
            needed=needed,
        )


def assign_references(session: Session, batch_id: int) -> int:
    """Give every pending item of the batch its payout reference; return how many got one."""
    done, after = 0, 0
    while True:
        # Each page starts after the last one: rescanning from the first item would step over
        # every item already given a reference, and the approval would grow with the square.
        ids = list(
            session.scalars(
                sa.select(PayoutItem.id)
                .where(PayoutItem.batch_id == batch_id, PayoutItem.id > after, PayoutItem.reference.is_(None))
                .order_by(PayoutItem.id)
                .limit(REFERENCE_PAGE)
            )
        )
        if not ids:
            return done
        after = ids[-1]
        for attempt in (1, 2, 3):
            refs = [domain.new_reference() for _ in ids]
            try:
                with session.begin_nested():
                    _set_references(session, ids, refs)
                break
            except IntegrityError:  # one in 2**75: draw this page again
                if attempt == 3:
                    raise
        done += len(ids)


def _set_references(session: Session, ids: list[int], refs: list[str]) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            sa.text(
                "UPDATE payout_items AS i SET reference = d.ref FROM unnest(CAST(:ids AS bigint[]),"
                " CAST(:refs AS text[])) AS d(id, ref) WHERE i.id = d.id"
            ),
            {"ids": ids, "refs": refs},
        )
    else:
        session.execute(
            sa.text("UPDATE payout_items SET reference = :ref WHERE id = :id"),
            [{"id": i, "ref": r} for i, r in zip(ids, refs, strict=True)],
        )


def items_digest(session: Session, batch_id: int) -> str:
    """Return the SHA-256 of the batch's item set: reference, amount and destination of each item."""
    digest = hashlib.sha256()
    rows = session.execute(
        sa.select(PayoutItem.reference, PayoutItem.amount, PayoutItem.bin, PayoutItem.account_index)
        .where(PayoutItem.batch_id == batch_id, PayoutItem.status != ItemStatus.CANCELLED)
        .order_by(PayoutItem.id)
        .execution_options(yield_per=REFERENCE_PAGE)
    )
    for reference, amount, bin_, index in rows:
        digest.update(f"{reference},{amount},{bin_},{index}\n".encode())
    return digest.hexdigest()


def reject(session: Session, batch_id: int, *, user_id: int, reason: str) -> Batch:
    """Reject a batch awaiting approval, with a reason; its items free their entitlement keys."""
    batch = get(session, batch_id, lock=True)
    if batch.status != BatchStatus.READY:
        raise BatchStateConflict(
            f"Batch {batch_id} is {batch.status}; only a batch awaiting approval can be rejected.",
            code="batch_not_ready",
        )
    return cancel(session, batch, user_id=user_id, reason=reason)


def cancel(session: Session, batch: Batch, *, user_id: int, reason: str) -> Batch:
    """Cancel a batch (locked by the caller): pending items are cancelled and free their keys."""
    batch.status = domain.batch_transition(batch.status, BatchStatus.CANCELLED)
    validation.release_pending(session, batch.id)
    batch.cancelled_at = batch.updated_at = utcnow()
    batch.cancelled_by = user_id
    batch.cancel_reason = domain.clean_text(reason)[: domain.MAX_REASON]
    session.flush()
    return batch

"""What a batch holds: counts and amounts per status, error code and ward; items and errors.

Counts are aggregated by the database when asked, from the indexed items and errors, so they
are always those of the rows themselves. Masking happens here too: an item's account number
leaves only as ``0******789``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from chopay.crypto import DataKeys
from disbursement.models import ITEM_ACCOUNT, Batch, BatchError, PayoutItem, Program
from disbursement.services.registry import get as get_beneficiary
from disbursement.services.registry import masked

ERROR_CSV_COLUMNS = ("row", "column", "code", "message")


def summary(session: Session, batch: Batch) -> dict[str, Any]:
    """Return the batch's counts and amounts per item status, per error code and per ward."""
    by_status = session.execute(
        sa.select(PayoutItem.status, sa.func.count(), sa.func.coalesce(sa.func.sum(PayoutItem.amount), 0))
        .where(PayoutItem.batch_id == batch.id)
        .group_by(PayoutItem.status)
        .order_by(PayoutItem.status)
    )
    by_error = session.execute(
        sa.select(
            BatchError.code,
            sa.func.count(sa.distinct(BatchError.row_number)),
            sa.func.coalesce(sa.func.sum(BatchError.amount), 0),
        )
        .where(BatchError.batch_id == batch.id)
        .group_by(BatchError.code)
        .order_by(BatchError.code)
    )
    by_ward = session.execute(
        sa.select(PayoutItem.ward, sa.func.count(), sa.func.coalesce(sa.func.sum(PayoutItem.amount), 0))
        .where(PayoutItem.batch_id == batch.id)
        .group_by(PayoutItem.ward)
        .order_by(PayoutItem.ward)
    )
    return {
        "by_status": [{"status": s, "count": n, "amount": int(a)} for s, n, a in by_status],
        "by_error": [{"code": c, "rows": n, "amount": int(a or 0)} for c, n, a in by_error],
        "by_ward": [{"ward": w, "count": n, "amount": int(a)} for w, n, a in by_ward],
    }


def file_errors(session: Session, batch_id: int) -> list[BatchError]:
    """Return the errors of the batch's file as a whole (those without a row)."""
    return list(
        session.scalars(
            sa.select(BatchError)
            .where(BatchError.batch_id == batch_id, BatchError.row_number.is_(None))
            .order_by(BatchError.id)
        )
    )


def errors(
    session: Session, batch_id: int, *, code: str | None = None, after: int | None = None, limit: int = 50
) -> list[BatchError]:
    """Return a batch's errors in file order (file-level ones first)."""
    stmt = sa.select(BatchError).where(BatchError.batch_id == batch_id).order_by(BatchError.id).limit(limit)
    if code is not None:
        stmt = stmt.where(BatchError.code == code)
    if after is not None:
        stmt = stmt.where(BatchError.id > after)
    return list(session.scalars(stmt))


def errors_csv(session: Session, batch_id: int) -> Iterator[str]:
    """Yield the batch's error report as CSV lines: row, column, code, message."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(ERROR_CSV_COLUMNS)
    rows = session.execute(
        sa.select(BatchError.row_number, BatchError.column_name, BatchError.code, BatchError.message)
        .where(BatchError.batch_id == batch_id)
        .order_by(BatchError.id)
        .execution_options(yield_per=2000)
    )
    yield _drain(out)
    for number, (row, column, code, message) in enumerate(rows, start=1):
        writer.writerow(("" if row is None else row, column or "", code, message))
        if number % 500 == 0:
            yield _drain(out)
    yield _drain(out)


def _drain(out: io.StringIO) -> str:
    text = out.getvalue()
    out.seek(0)
    out.truncate()
    return text


def items(
    session: Session,
    *,
    batch_id: int | None = None,
    beneficiary_id: int | None = None,
    status: str | None = None,
    after: int | None = None,
    limit: int = 50,
) -> list[PayoutItem]:
    """Return items of a batch, or of a person across batches, in id order."""
    stmt = sa.select(PayoutItem).order_by(PayoutItem.id).limit(limit)
    if batch_id is not None:
        stmt = stmt.where(PayoutItem.batch_id == batch_id)
    if beneficiary_id is not None:
        get_beneficiary(session, beneficiary_id)
        stmt = stmt.where(PayoutItem.beneficiary_id == beneficiary_id)
    if status is not None:
        stmt = stmt.where(PayoutItem.status == status)
    if after is not None:
        stmt = stmt.where(PayoutItem.id > after)
    return list(session.scalars(stmt))


def item_view(keys: DataKeys, item: PayoutItem, program_codes: dict[int, str]) -> dict[str, Any]:
    """Return what a response shows of an item: its account number masked."""
    return {
        "id": item.id,
        "batch_id": item.batch_id,
        "row": item.row_number,
        "program": program_codes.get(item.program_id),
        "period": item.period,
        "beneficiary_id": item.beneficiary_id,
        "ward": item.ward,
        "amount": item.amount,
        "bin": item.bin,
        "account_number": masked(keys.decrypt(item.account_number, ITEM_ACCOUNT.context)),
        "destination_source": item.destination_source,
        "reference": item.reference,
        "status": item.status,
        "attempts": item.attempts,
        "bank_txn_id": item.bank_txn_id,
        "reason_code": item.reason_code,
        "receipt_code": item.receipt_code,
        "paid_at": item.paid_at,
        "created_at": item.created_at,
    }


def program_codes(session: Session, ids: set[int]) -> dict[int, str]:
    """Return the codes of the programs with ``ids``."""
    if not ids:
        return {}
    rows = session.execute(sa.select(Program.id, Program.code).where(Program.id.in_(list(ids))))
    return {program_id: code for program_id, code in rows}

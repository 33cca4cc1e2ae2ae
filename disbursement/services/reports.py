"""What a batch holds: counts and amounts per status, error code and ward; items and errors.

Counts are aggregated by the database when asked, from the indexed items and errors, so they
are always those of the rows themselves. Masking happens here too: an item's account number
leaves only as ``0******789``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from chopay.crypto import DataKeys
from chopay.db import utcnow
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
        "execution": progress(session, batch),
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
    rows = session.execute(
        sa.select(BatchError.row_number, BatchError.column_name, BatchError.code, BatchError.message)
        .where(BatchError.batch_id == batch_id)
        .order_by(BatchError.id)
        .execution_options(yield_per=2000)
    )
    return _csv_lines(
        ERROR_CSV_COLUMNS,
        (("" if row is None else row, column or "", code, message) for row, column, code, message in rows),
    )


def _csv_lines(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Iterator[str]:
    """Yield CSV text (Excel line ends) in pieces of 500 rows."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    yield _drain(out)
    for number, row in enumerate(rows, start=1):
        writer.writerow(row)
        if number % 500 == 0:
            yield _drain(out)
    yield _drain(out)


REPORT_CSV_COLUMNS = (
    "row",
    "reference",
    "retry_of",
    "status",
    "amount",
    "ward",
    "bin",
    "account_number",
    "bank_txn_id",
    "reason_code",
    "rail_code",
    "attempts",
    "receipt_code",
    "paid_at",
)


def report_csv(session: Session, keys: DataKeys, batch_id: int) -> Iterator[str]:
    """Yield every item of the batch as CSV: status, bank transaction id, reason, attempts, receipt."""
    first = sa.orm.aliased(PayoutItem)
    rows = session.execute(
        sa.select(
            PayoutItem.row_number,
            PayoutItem.reference,
            first.reference,
            PayoutItem.status,
            PayoutItem.amount,
            PayoutItem.ward,
            PayoutItem.bin,
            PayoutItem.account_number,
            PayoutItem.bank_txn_id,
            PayoutItem.reason_code,
            PayoutItem.rail_code,
            PayoutItem.attempts,
            PayoutItem.receipt_code,
            PayoutItem.paid_at,
        )
        .outerjoin(first, first.id == PayoutItem.retry_of_id)
        .where(PayoutItem.batch_id == batch_id)
        .order_by(PayoutItem.id)
        .execution_options(yield_per=2000)
    )

    def lines() -> Iterator[Sequence[Any]]:
        for r in rows:
            account = masked(keys.decrypt(r[7], ITEM_ACCOUNT.context))
            paid_at = r[13].isoformat() if r[13] is not None else ""
            yield (
                *(("" if v is None else v) for v in r[:7]),
                account,
                *(("" if v is None else v) for v in r[8:13]),
                paid_at,
            )

    return _csv_lines(REPORT_CSV_COLUMNS, lines())


def progress(session: Session, batch: Batch) -> dict[str, Any]:
    """Return how far a batch's execution has come: done, remaining, items/s and ETA, failures."""
    by_reason = session.execute(
        sa.select(
            PayoutItem.reason_code, sa.func.count(), sa.func.coalesce(sa.func.sum(PayoutItem.amount), 0)
        )
        .where(PayoutItem.batch_id == batch.id, PayoutItem.status == "failed")
        .group_by(PayoutItem.reason_code)
        .order_by(PayoutItem.reason_code)
    )
    counts = dict(
        session.execute(
            sa.select(PayoutItem.status, sa.func.count())
            .where(PayoutItem.batch_id == batch.id)
            .group_by(PayoutItem.status)
        ).all()
    )
    done = counts.get("paid", 0) + counts.get("failed", 0)
    remaining = counts.get("pending", 0) + counts.get("sending", 0)
    rate = eta = None
    if batch.started_at is not None:
        elapsed = ((batch.finished_at or utcnow()) - batch.started_at).total_seconds()
        rate = round(done / elapsed, 1) if elapsed > 0 else None
        eta = round(remaining / rate, 1) if rate and batch.finished_at is None else (0.0 if rate else None)
    return {
        "by_reason": [{"code": c or "", "count": n, "amount": int(a)} for c, n, a in by_reason],
        "done": done,
        "remaining": remaining,
        "items_per_second": rate,
        "eta_seconds": eta,
        "started_at": batch.started_at,
        "finished_at": batch.finished_at,
        "tree_size": batch.tree_size,
        "alert": batch.alert,
    }


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
        "rail_code": item.rail_code,
        "precheck_code": item.precheck_code,
        "paid_at": item.paid_at,
        "created_at": item.created_at,
    }


def program_codes(session: Session, ids: set[int]) -> dict[int, str]:
    """Return the codes of the programs with ``ids``."""
    if not ids:
        return {}
    rows = session.execute(sa.select(Program.id, Program.code).where(Program.id.in_(list(ids))))
    return {program_id: code for program_id, code in rows}

"""Controls of a running batch: pause, resume, cancel, and re-sending what failed for a fixable reason.

Each is lock, check, mutate on the batch row, and signals the execution jobs once the
caller's transaction commits. Pausing stops new sends at the next chunk; what is in flight
finishes and resolves. Cancelling cancels the items not yet sent (they free their entitlement
keys); items already sent resolve normally, and the batch is sealed when the last one has.

``retry_failed`` re-sends only items that can now succeed: those that failed for want of a
reachable rail (``rail_unavailable``), and those that failed because of their destination
(closed, not found, frozen or dormant, name mismatch, returned) whose beneficiary's
registered destination was changed after the item failed (it is then sent there). Each
re-send is a new item with a new reference; ``retry_of_id`` names the first item of the
payment (so does the ledger leaf, ``retry_of``).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from chopay import db, jobs
from chopay.db import reserve_ids, utcnow
from disbursement import domain
from disbursement.domain import BatchStatus, ItemStatus
from disbursement.errors import ApprovalConflict, BatchStateConflict
from disbursement.models import Batch, Beneficiary, PayoutItem, Program
from disbursement.services import batches, programs

START_JOB = batches.START_JOB
FINISH_JOB = "disbursement.execution.finish_batch"


def _signal(session: Session, name: str, batch_id: int) -> None:
    db.after_commit(session, lambda: jobs.enqueue(name, batch_id, queue="payouts"))


def _refuse(batch: Batch, action: str, allowed: str) -> BatchStateConflict:
    return BatchStateConflict(
        f"Batch {batch.id} is {batch.status}; only a {allowed} batch can be {action}.",
        code="batch_state_invalid",
        status_now=batch.status,
    )


def pause(session: Session, batch_id: int) -> Batch:
    """Pause a running batch: no new item is sent until it is resumed."""
    batch = batches.get(session, batch_id, lock=True)
    if batch.status != BatchStatus.RUNNING:
        raise _refuse(batch, "paused", "running")
    batch.status = domain.batch_transition(batch.status, BatchStatus.PAUSED)
    batch.alert = {"code": "paused", "message": "Paused by an operator.", "at": utcnow().isoformat()}
    batch.updated_at = utcnow()
    session.flush()
    return batch


def resume(session: Session, batch_id: int) -> Batch:
    """Resume a paused batch (after funding the source, say): its unsent items are sent."""
    batch = batches.get(session, batch_id, lock=True)
    if batch.status != BatchStatus.PAUSED:
        raise _refuse(batch, "resumed", "paused")
    batch.status = domain.batch_transition(batch.status, BatchStatus.RUNNING)
    batch.alert = None
    batch.progress_at = batch.updated_at = utcnow()
    session.flush()
    _signal(session, START_JOB, batch.id)
    return batch


def cancel(session: Session, batch_id: int, *, user_id: int, reason: str) -> Batch:
    """Cancel an approved, running or paused batch: unsent items are cancelled, sent ones resolve."""
    batch = batches.get(session, batch_id, lock=True)
    if batch.status not in (BatchStatus.APPROVED, BatchStatus.RUNNING, BatchStatus.PAUSED):
        raise _refuse(batch, "cancelled", "approved, running or paused")
    started = batch.started_at is not None
    batches.cancel(session, batch, user_id=user_id, reason=reason)
    if started:
        _signal(session, FINISH_JOB, batch.id)
    return batch


def retryable(session: Session, batch_id: int) -> list[tuple[PayoutItem, Beneficiary]]:
    """Return the batch's open failures that can now succeed, with their beneficiaries."""
    later = sa.orm.aliased(PayoutItem)
    rows = session.execute(
        sa.select(PayoutItem, Beneficiary)
        .join(Beneficiary, Beneficiary.id == PayoutItem.beneficiary_id)
        .where(
            PayoutItem.batch_id == batch_id,
            PayoutItem.status == ItemStatus.FAILED,
            PayoutItem.reason_code.in_([*domain.DESTINATION_REASONS, *domain.RETRY_ANYWAY_REASONS]),
            ~sa.exists().where(
                later.batch_id == batch_id,
                later.status != ItemStatus.CANCELLED,
                later.retry_of_id == sa.func.coalesce(PayoutItem.retry_of_id, PayoutItem.id),
                later.id > PayoutItem.id,
            ),
        )
        .order_by(PayoutItem.id)
    ).all()
    out = []
    for item, person in rows:
        if item.reason_code in domain.RETRY_ANYWAY_REASONS or (
            person.status == domain.BeneficiaryStatus.ACTIVE
            and person.account_index is not None
            and item.failed_at is not None
            and person.updated_at > item.failed_at
            and (person.bin, person.account_index) != (item.bin, item.account_index)
        ):
            out.append((item, person))
    return out


def retry_failed(session: Session, batch_id: int) -> dict[str, Any]:
    """Re-send the failures that can now succeed, each as a new item linked to the first one."""
    batch = batches.get(session, batch_id, lock=True)
    if batch.status != BatchStatus.COMPLETED_WITH_FAILURES:
        raise _refuse(batch, "retried", "completed_with_failures")
    found = retryable(session, batch_id)
    if not found:
        raise BatchStateConflict(
            f"Batch {batch_id} has no failed item that can succeed now: correct the beneficiaries' "
            "destinations in the registry first.",
            code="nothing_to_retry",
        )
    amount = sum(item.amount for item, _ in found)
    program = session.get(Program, batch.program_id)
    assert program is not None
    balance = programs.budget_balance(session, program.code)
    if amount > balance:
        raise ApprovalConflict(
            f"The budget of {program.code} holds {balance:,} dong; the re-sends need {amount:,}.",
            code="budget_insufficient",
            budget=balance,
            needed=amount,
        )
    now = utcnow()
    ids = reserve_ids(session, PayoutItem, len(found))
    rows = []
    for new_id, (item, person) in zip(ids, found, strict=True):
        fresh_destination = item.reason_code in domain.DESTINATION_REASONS
        rows.append(
            {
                "id": new_id,
                "batch_id": batch.id,
                "row_number": item.row_number,
                "program_id": item.program_id,
                "beneficiary_id": item.beneficiary_id,
                "period": item.period,
                "ward": item.ward,
                "amount": item.amount,
                "bin": person.bin if fresh_destination else item.bin,
                "account_number": person.account_number if fresh_destination else item.account_number,
                "account_index": person.account_index if fresh_destination else item.account_index,
                "destination_source": "registry" if fresh_destination else item.destination_source,
                "status": ItemStatus.PENDING.value,
                "entitled": True,
                "attempts": 0,
                "retry_of_id": item.retry_of_id or item.id,
                "created_at": now,
                "updated_at": now,
            }
        )
    session.execute(sa.insert(PayoutItem), rows)
    batches.assign_references(session, batch.id)
    batch.status = domain.batch_transition(batch.status, BatchStatus.RUNNING)
    batch.finished_at = None
    batch.progress_at = batch.updated_at = now
    session.flush()
    _signal(session, START_JOB, batch.id)
    return {"batch": batch, "retried": len(found), "amount": amount}

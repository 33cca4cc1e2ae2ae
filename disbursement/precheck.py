"""The account pre-check of a batch before approval: who holds each destination, and can it receive.

``POST /v1/batches/{id}/precheck`` (a ready batch) records the check as queued and enqueues
:func:`precheck_batch`, which asks the rail's holder lookup about every item, a page at a
time, one unit of work per page, so that a killed run resumes after its last page. Each item
gets a ``precheck_code``: ``ok``, ``account_closed``, ``account_dormant``, ``account_frozen``,
``account_not_found``, ``name_mismatch`` (the holder's name differs from the beneficiary's
beyond case, diacritics, spacing and punctuation: :meth:`Holder.name_matches`) or
``lookup_failed`` (the rail did not answer). The batch's ``precheck`` shows the progress
(``checked`` of ``total``) and the counts per code. A rail without lookup is refused plainly
at the request (``precheck_unsupported``); nothing is queued.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from chopay import db, jobs
from chopay.crypto import data_keys
from chopay.db import get_db, utcnow
from disbursement.domain import BatchStatus
from disbursement.errors import BatchStateConflict, PrecheckUnsupported
from disbursement.models import ITEM_ACCOUNT, Batch, Beneficiary, PayoutItem
from disbursement.services import batches, payouts
from payments.rails.base import Holder, Rail
from payments.rails.errors import RailError, RailUnsupported

JOB = "disbursement.precheck.precheck_batch"
PAGE = 200
UNSUPPORTED = "This payout rail cannot pre-check accounts: it offers no holder lookup."


def request(session: Session, batch_id: int, rail: Rail) -> Batch:
    """Queue the pre-check of a ready batch; refuse plainly on a rail without lookup."""
    batch = batches.get(session, batch_id, lock=True)
    if batch.status != BatchStatus.READY:
        raise BatchStateConflict(
            f"Batch {batch_id} is {batch.status}; accounts are pre-checked before approval, "
            "in a ready batch.",
            code="batch_not_ready",
        )
    if not rail.supports_lookup:
        raise PrecheckUnsupported(UNSUPPORTED, rail=rail.name)
    total = session.scalar(
        sa.select(sa.func.count()).select_from(PayoutItem).where(PayoutItem.batch_id == batch_id)
    )
    batch.precheck = {
        "status": "queued",
        "checked": 0,
        "total": int(total or 0),
        "after": 0,
        "codes": {},
        "requested_at": utcnow().isoformat(),
    }
    session.flush()
    db.after_commit(session, lambda: jobs.enqueue(JOB, batch_id, queue="payouts"))
    return batch


def classify(holder: Holder | None, expected_name: str) -> str:
    """Return the pre-check code of one destination's lookup."""
    if holder is None:
        return "account_not_found"
    if holder.status != "active":
        return f"account_{holder.status}"
    return "ok" if holder.name_matches(expected_name) else "name_mismatch"


def precheck_batch(batch_id: int) -> None:
    """Look up every item's destination, a page per unit of work, resuming after the last page."""
    from disbursement.execution import rail as payout_rail

    database = get_db()
    keys = data_keys()
    the_rail = payout_rail()
    while True:
        with database.read_session() as s:
            batch = s.get(Batch, batch_id)
            state = dict(batch.precheck or {}) if batch is not None else {}
            if state.get("status") not in ("queued", "running"):
                return
            rows = s.execute(
                sa.select(PayoutItem.id, PayoutItem.bin, PayoutItem.account_number, Beneficiary.full_name)
                .join(Beneficiary, Beneficiary.id == PayoutItem.beneficiary_id)
                .where(PayoutItem.batch_id == batch_id, PayoutItem.id > state.get("after", 0))
                .order_by(PayoutItem.id)
                .limit(PAGE)
            ).all()
        codes: list[tuple[int, str]] = []
        unsupported = False
        for item_id, bin_, account, name in rows:
            try:
                holder = the_rail.lookup(bin_, keys.decrypt(account, ITEM_ACCOUNT.context))
                codes.append((item_id, classify(holder, name)))
            except RailUnsupported:
                unsupported = True
                break
            except RailError:
                codes.append((item_id, "lookup_failed"))
        with database.unit_of_work() as s:
            _save(s, batch_id, state, codes, done=not rows or len(rows) < PAGE, unsupported=unsupported)
        if unsupported or not rows or len(rows) < PAGE:
            return


def _save(
    session: Session,
    batch_id: int,
    state: dict[str, Any],
    codes: list[tuple[int, str]],
    *,
    done: bool,
    unsupported: bool,
) -> None:
    payouts.update_items(session, [{"id": i, "precheck_code": c} for i, c in codes])
    counted = Counter(state.get("codes", {}))
    counted.update(c for _, c in codes)
    state.update(
        checked=state.get("checked", 0) + len(codes),
        after=codes[-1][0] if codes else state.get("after", 0),
        codes=dict(sorted(counted.items())),
        status="unsupported" if unsupported else ("finished" if done else "running"),
    )
    if unsupported:
        state["message"] = UNSUPPORTED
    if done or unsupported:
        state["finished_at"] = utcnow().isoformat()
    session.execute(sa.update(Batch).where(Batch.id == batch_id).values(precheck=state))

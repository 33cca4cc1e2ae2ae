"""rq jobs of reconciliation: run one reconciliation, and the sweep that resumes unfinished ones.

The import enqueues :func:`run` once it commits. If that signal is lost (Redis down, a worker
killed), :func:`sweep` enqueues every reconciliation still queued, and every running one whose
progress has not moved for :data:`STALE_SECONDS` (its worker died): the run resumes from its
pinned checkpoint and writes the report once.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from flask import current_app

from chopay import crypto, db, jobs
from chopay.db import utcnow
from chopay.jobs import Sweep
from payments.reconciliation import pipeline
from payments.reconciliation.models import Reconciliation
from payments.reconciliation.services import RUN_JOB

SWEEP_JOB = "payments.reconciliation.jobs.sweep"
STALE_SECONDS = 600
"""A running reconciliation whose progress has not changed for this long has lost its worker."""


def run(reconciliation_id: int) -> None:
    """Run the reconciliation ``reconciliation_id`` to its end (safe to run twice)."""
    pipeline.run(db.get_db(), current_app.config["CHOPAY"], crypto.data_keys(), reconciliation_id)


def sweep() -> None:
    """Enqueue every reconciliation that is queued, or running without progress."""
    stale = utcnow() - dt.timedelta(seconds=STALE_SECONDS)
    with db.get_db().read_session() as s:
        ids = list(
            s.scalars(
                sa.select(Reconciliation.id).where(
                    sa.or_(
                        Reconciliation.status == "queued",
                        sa.and_(Reconciliation.status == "running", Reconciliation.updated_at < stale),
                    )
                )
            )
        )
    for reconciliation_id in ids:
        jobs.enqueue(RUN_JOB, reconciliation_id)


def sweeps() -> list[Sweep]:
    """Return the sweeps of reconciliation."""
    return [Sweep(SWEEP_JOB)]

"""rq jobs of the ledger, and the sweeps that keep the log sealed.

Posting signals :func:`sequence` once its transaction commits. A run sequences everything
committed, one batch per unit of work, and signs a checkpoint when one is due: the log grew and
the last checkpoint is at least ``CHOPAY_CHECKPOINT_INTERVAL`` old. It never waits for that
interval. A timer sweep, every half interval, asks the database whether a run would now have
something to do (a cheap read that takes no lock) and only then enqueues one; so an entry
committed just after a checkpoint is sealed by the next, at most about one and a half
intervals later, and no run ever sleeps. A slower sweep re-enqueues the job in case a signal
was lost with Redis.
"""

from __future__ import annotations

import logging

from flask import current_app

from chopay import db
from chopay.config import Settings
from chopay.db import Database
from chopay.jobs import Sweep
from payments.ledger import keys, sequencer
from payments.ledger.models import Checkpoint
from payments.ledger.services import SEQUENCE_JOB

logger = logging.getLogger("chopay.ledger")


def sequence(force_checkpoint: bool = False) -> None:
    """Sequence committed transactions, then sign a checkpoint if one is due (or forced)."""
    seal(db.get_db(), current_app.config["CHOPAY"], force=force_checkpoint)


def seal(database: Database, settings: Settings, *, force: bool = False) -> tuple[int, Checkpoint | None]:
    """Sequence every pending transaction and sign a checkpoint; return (entries added, checkpoint)."""
    added = 0
    while True:
        with database.unit_of_work() as s:
            n = sequencer.sequence(s, limit=sequencer.BATCH)
        added += n
        if n < sequencer.BATCH:
            break
    signer = keys.load_signer(settings)
    if signer is None:
        logger.error("ledger signing key missing: no checkpoint signed", extra={"entries": added})
        return added, None
    with database.unit_of_work() as s:
        interval = 0.0 if force else settings.checkpoint_interval
        cp = sequencer.checkpoint(s, signer, settings.ledger_origin, min_interval=interval)
    if added or cp is not None:
        logger.info("ledger sequenced", extra={"entries": added, "checkpoint": cp.size if cp else None})
    return added, cp


def sealing_due() -> bool:
    """Tell whether a sequencer run now would sequence or sign something."""
    with db.get_db().read_session() as s:
        return sequencer.backlog(s).due(current_app.config["CHOPAY"].checkpoint_interval)


def sweeps(settings: Settings) -> list[Sweep]:
    """Return the ledger's sweeps: recovery, and the sealing timer."""
    return [
        Sweep(SEQUENCE_JOB, "ledger"),
        Sweep(SEQUENCE_JOB, "ledger", every=max(settings.checkpoint_interval / 2, 0.05), due=sealing_due),
    ]

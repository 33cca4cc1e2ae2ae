"""rq jobs of the ledger, and the sweeps that keep the log sealed.

Posting signals :func:`sequence` once its transaction commits. With Redis, a ``chopay worker``
on the ``ledger`` queue listens for those signals on a thread of its own (:func:`listener`)
and runs at most one sequencing per pace, however many commits signal it; without a listener
each signal enqueues an rq job, coalesced while one waits. A run sequences everything
committed, one batch per unit of work, and signs a checkpoint when one is due: the log grew and
the last checkpoint is at least ``CHOPAY_CHECKPOINT_INTERVAL`` old. It never waits for that
interval. A timer sweep, every half interval, asks the database whether a run would now have
something to do (a cheap read that takes no lock) and only then enqueues one; so an entry
committed just after a checkpoint is sealed by the next, at most about one and a half
intervals later, and no run ever sleeps. A slower sweep re-enqueues the job in case a signal
was lost with Redis. A run that follows this process's own checkpoint by less than an interval
skips the checkpoint's transaction altogether: it could not sign one yet.
"""

from __future__ import annotations

import logging
import time
import weakref

from flask import current_app

from chopay import db
from chopay.config import Settings
from chopay.db import Database
from chopay.jobs import Listener, Sweep
from payments.ledger import keys, sequencer
from payments.ledger.models import Checkpoint
from payments.ledger.services import SEQUENCE_JOB

logger = logging.getLogger("chopay.ledger")

# When this process last signed a checkpoint of each database (monotonic seconds).
_SIGNED_AT: weakref.WeakKeyDictionary[Database, float] = weakref.WeakKeyDictionary()


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
    interval = 0.0 if force else settings.checkpoint_interval
    signed_at = _SIGNED_AT.get(database)
    if signed_at is not None and time.monotonic() - signed_at < interval:
        # This process signed a checkpoint less than an interval ago, so none may be signed
        # yet: skip the transaction that would only find that out. The sealing timer runs this
        # again once one is due.
        if added:
            logger.info("ledger sequenced", extra={"entries": added, "checkpoint": None})
        return added, None
    signer = keys.load_signer(settings)
    if signer is None:
        logger.error("ledger signing key missing: no checkpoint signed", extra={"entries": added})
        return added, None
    with database.unit_of_work() as s:
        cp = sequencer.checkpoint(s, signer, settings.ledger_origin, min_interval=interval)
    if cp is not None:
        _SIGNED_AT[database] = time.monotonic()
    if added or cp is not None:
        logger.info("ledger sequenced", extra={"entries": added, "checkpoint": cp.size if cp else None})
    return added, cp


def sealing_due() -> bool:
    """Tell whether a sequencer run now would sequence or sign something."""
    with db.get_db().read_session() as s:
        return sequencer.backlog(s).due(current_app.config["CHOPAY"].checkpoint_interval)


def listener(settings: Settings) -> Listener:
    """Return the sequencer's listener: workers on the ``ledger`` queue run it on a thread.

    Between runs it waits a tenth of a checkpoint interval (at most 100 ms), so that a stream of
    postings is sequenced in batches, however many commits signal it.
    """
    return Listener(SEQUENCE_JOB, "ledger", pace=min(0.1, settings.checkpoint_interval / 10))


def sweeps(settings: Settings) -> list[Sweep]:
    """Return the ledger's sweeps: recovery, and the sealing timer."""
    return [
        Sweep(SEQUENCE_JOB, "ledger"),
        Sweep(SEQUENCE_JOB, "ledger", every=max(settings.checkpoint_interval / 2, 0.05), due=sealing_due),
    ]

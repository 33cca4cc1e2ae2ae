"""rq jobs of the ledger."""

from __future__ import annotations

import logging
import time

from flask import current_app
from sqlalchemy.orm import Session

from chopay import db
from payments.ledger import keys, log

logger = logging.getLogger("chopay.ledger")


def sequence(force_checkpoint: bool = False) -> None:
    """Sequence committed transactions, then sign a checkpoint if the log grew."""
    settings = current_app.config["CHOPAY"]
    with db.get_db().session() as s:
        added = log.sequence(s)
        signer = keys.load_signer(settings)
        if signer is None:
            logger.error("ledger signing key missing: no checkpoint signed", extra={"entries": added})
            return
        interval = 0.0 if force_checkpoint else settings.checkpoint_interval
        cp = log.checkpoint(s, signer, settings.ledger_origin, min_interval=interval)
        if cp is None and interval > 0 and log.current_size(s) > _last_size(s):
            # Too soon after the previous checkpoint: wait out the interval rather than leave
            # new entries unsealed until some later run.
            time.sleep(interval)
            cp = log.checkpoint(s, signer, settings.ledger_origin)
        if added or cp is not None:
            logger.info("ledger sequenced", extra={"entries": added, "checkpoint": cp.size if cp else None})


def _last_size(s: Session) -> int:
    last = log.latest_checkpoint(s)
    return last.size if last is not None else 0

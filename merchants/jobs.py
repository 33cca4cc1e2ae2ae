"""Jobs of merchants: the sweep that expires payment intents past their expiry.

``expire_intents`` runs every ``CHOPAY_SWEEP_INTERVAL`` seconds; it is safe to run twice and
concurrently (an intent is expired only while it is still open, in one UPDATE), and works
through the backlog a thousand intents per unit of work.
"""

from __future__ import annotations

import logging

from chopay import jobs
from chopay.db import unit_of_work
from merchants.services import intents

log = logging.getLogger("chopay.merchants")

EXPIRE = "merchants.jobs.expire_intents"
BATCH = 1000


def expire_intents() -> int:
    """Sweep: mark every open intent past its expiry as expired; return how many."""
    total = 0
    while True:
        with unit_of_work() as s:
            done = intents.expire_due(s, limit=BATCH)
        total += done
        if done < BATCH:
            break
    if total:
        log.info("payment intents expired", extra={"count": total})
    return total


SWEEPS = (jobs.Sweep(EXPIRE),)

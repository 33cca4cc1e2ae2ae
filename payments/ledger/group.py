"""Group commit: concurrent posts that each need a transaction of their own share one.

A caller with nothing else to write (a manual journal entry, say) can post through
:func:`post_alone` instead of in a unit of work of its own. Concurrent callers in one process
then share one database transaction: the first one to find the group free becomes its leader,
takes every post waiting at that moment, posts them one after the other in one unit of work and
commits once; the others wait for that commit, then return their own result or raise their own
error. Nobody returns before the commit that made their transaction durable.

Why: on hot accounts every post holds the row locks of its accounts until its commit, and the
commit waits for the write-ahead log to reach the disk. One commit per post serialises posts
on a hot account at one disk flush each; one commit per group moves that flush, and the lock
hold, off the per-post path.

What holds per post, as if it had been alone:

* a refusal (any :class:`~payments.ledger.errors.LedgerError`: a balance that would go
  negative, an unknown account, a key reused with other content) fails that post only. Posting
  checks every rule before it writes, so a refused post wrote nothing and the group goes on;
* a later post in the group sees the balances that the earlier ones left, exactly as if they had
  committed one after the other (they are in one transaction, in that order);
* if the group's transaction itself fails (an unexpected database error, a failed commit),
  nothing of it is committed, and each of its posts is tried again in a unit of work of its own,
  so that the error goes to the post that causes it and to no other.

The leader first locks every account of the group in ascending id order, as a single post does;
two groups (two processes) therefore never wait on each other in a cycle.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from dataclasses import dataclass, field

from chopay.db import Database
from payments.ledger import services
from payments.ledger.domain import Recorded, TransactionSpec
from payments.ledger.errors import LedgerError

log = logging.getLogger("chopay.ledger")

MAX_GROUP = 64
"""Posts committed together at most; a longer queue is served by the next leader."""


def _taken_lock() -> threading.Lock:
    lock = threading.Lock()
    lock.acquire()
    return lock


@dataclass(eq=False)
class _Waiting:
    spec: TransactionSpec
    result: Recorded | None = None
    error: BaseException | None = None
    done: bool = False
    wake: threading.Lock = field(default_factory=_taken_lock)
    """Released when the post is done, or when this waiting thread is to lead the next group."""


class GroupPoster:
    """Post each transaction durably on its own, committing concurrent ones together."""

    def __init__(self, database: Database, max_group: int = MAX_GROUP) -> None:
        self.database = database
        self.max_group = max_group
        self._queue: list[_Waiting] = []
        self._lock = threading.Lock()
        self._leading = False

    def post(self, spec: TransactionSpec) -> Recorded:
        """Post ``spec`` in a committed transaction (shared with concurrent posts); return it."""
        waiting = _Waiting(spec)
        with self._lock:
            self._queue.append(waiting)
            lead = not self._leading
            self._leading = True
        if not lead:
            # Each waiting thread sleeps on a lock of its own: a leader wakes exactly the threads it
            # served, and hands the lead to the first one still waiting.
            waiting.wake.acquire()
        if not waiting.done:
            self._lead()
        if waiting.error is not None:
            raise waiting.error
        assert waiting.result is not None
        return waiting.result

    def _lead(self) -> None:
        """Commit the posts waiting now (this thread's among them), then pass the lead on."""
        # Let the threads that the last group woke post again first (a yield, not a wait): without
        # it, every other group would be this thread alone.
        time.sleep(0)
        with self._lock:
            group = self._queue[: self.max_group]
            del self._queue[: self.max_group]
        try:
            self._commit(group)
        finally:
            with self._lock:
                successor = self._queue[0] if self._queue else None
                self._leading = successor is not None
            for w in group:
                w.done = True
                w.wake.release()
            if successor is not None:
                successor.wake.release()

    def _commit(self, group: list[_Waiting]) -> None:
        try:
            with self.database.unit_of_work() as s:
                outcomes = services.post_each(s, [w.spec for w in group])
        except Exception as exc:
            if len(group) == 1:
                group[0].error = exc
                return
            # Nothing of the group was committed; find whose post fails by posting each alone.
            log.warning("group commit failed; posting each alone", exc_info=True, extra={"posts": len(group)})
            for w in group:
                try:
                    with self.database.unit_of_work() as s:
                        w.result = services.post(s, w.spec)
                except Exception as alone:
                    w.error = alone
            return
        for w, outcome in zip(group, outcomes, strict=True):
            if isinstance(outcome, LedgerError):  # refused: it wrote nothing
                w.error = outcome
            else:
                w.result = outcome


_POSTERS: weakref.WeakKeyDictionary[Database, GroupPoster] = weakref.WeakKeyDictionary()
_POSTERS_LOCK = threading.Lock()


def poster(database: Database) -> GroupPoster:
    """Return the group poster of ``database`` (one per database, shared by its threads)."""
    with _POSTERS_LOCK:
        found = _POSTERS.get(database)
        if found is None:
            found = _POSTERS[database] = GroupPoster(database)
        return found


def post_alone(database: Database, spec: TransactionSpec) -> Recorded:
    """Post ``spec`` in a transaction of its own, committed before this returns (group commit)."""
    return poster(database).post(spec)

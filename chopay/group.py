"""Group commit: concurrent requests that each need a transaction of their own share one.

Concurrent callers in one process hand their work to a :class:`GroupCommit`. The first one to
find the group free becomes its leader: it takes every item waiting at that moment, runs them
together in one unit of work (:meth:`GroupCommit.run_group`) and commits once; the others wait
for that commit, then return their own result or raise their own error. Nobody returns before
the commit that made their work durable.

Why: a commit waits for the write-ahead log to reach the disk, and each statement costs a round
trip and its Python; a group pays both once for all of its members.

What holds per item, as if it had been alone:

* ``run_group`` answers each item with its result or with the exception that refuses it alone
  (having written nothing for it); the others are committed;
* if the group's transaction itself fails (``run_group`` raises, or the commit fails), nothing
  of it is committed, and each item is run again in a unit of work of its own
  (:meth:`GroupCommit.run_one`), so that the error goes to the item that causes it and to no
  other.

Used by the ledger (:mod:`payments.ledger.group`) and by the bank-notification intake
(:mod:`merchants.intake.group`).
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Self, TypeVar

from sqlalchemy.orm import Session

from chopay.db import Database

log = logging.getLogger("chopay.group")

T = TypeVar("T")
R = TypeVar("R")

MAX_GROUP = 64
"""Items committed together at most; a longer queue is served by the next leader."""


def _taken_lock() -> threading.Lock:
    lock = threading.Lock()
    lock.acquire()
    return lock


@dataclass(eq=False)
class Waiting(Generic[T]):
    """One caller's item, and what became of it."""

    item: T
    result: Any = None
    error: BaseException | None = None
    done: bool = False
    wake: threading.Lock = field(default_factory=_taken_lock)
    """Released when the item is done, or when this waiting thread is to lead the next group."""


class GroupCommit(ABC, Generic[T, R]):
    """Run each item durably on its own, committing concurrent ones together."""

    name = "group"
    """What the log calls this group."""

    def __init__(self, database: Database, max_group: int = MAX_GROUP) -> None:
        self.database = database
        self.max_group = max_group
        self._queue: list[Waiting[T]] = []
        self._lock = threading.Lock()
        self._leading = False

    @classmethod
    def of(cls, database: Database) -> Self:
        """Return this kind of group of ``database``: one per database, shared by its threads."""
        with _GROUPS_LOCK:
            kinds = _GROUPS.setdefault(database, {})
            found = kinds.get(cls)
            if found is None:
                found = kinds[cls] = cls(database)
            assert isinstance(found, cls)
            return found

    @abstractmethod
    def run_group(self, session: Session, items: list[T]) -> Sequence[R | BaseException]:
        """Run ``items`` in ``session``'s transaction; return each one's result or refusal."""

    @abstractmethod
    def run_one(self, session: Session, item: T) -> R:
        """Run ``item`` alone in ``session``'s transaction (after its group failed)."""

    def submit(self, item: T) -> R:
        """Run ``item`` in a committed transaction (shared with concurrent items); return its result."""
        waiting: Waiting[T] = Waiting(item)
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
        if waiting.result is None:  # the leader was interrupted (nothing set it); never answer None
            raise RuntimeError(f"{self.name}: the group ended without an outcome for this item")
        result: R = waiting.result
        return result

    def _lead(self) -> None:
        """Commit the items waiting now (this thread's among them), then pass the lead on."""
        # Let the threads that the last group woke submit again first (a yield, not a wait):
        # without it, every other group would be this thread alone.
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

    def _commit(self, group: list[Waiting[T]]) -> None:
        try:
            with self.database.unit_of_work() as s:
                outcomes = list(self.run_group(s, [w.item for w in group]))
                if len(outcomes) != len(group):  # before the commit: nobody may get another's answer
                    raise RuntimeError(f"{self.name}: {len(outcomes)} outcomes for {len(group)} items")
        except Exception as exc:
            if len(group) == 1:
                group[0].error = exc
                return
            # Nothing of the group was committed; find whose item fails by running each alone.
            log.warning(
                "group commit failed; running each alone",
                exc_info=True,
                extra={"group": self.name, "items": len(group)},
            )
            for w in group:
                try:
                    with self.database.unit_of_work() as s:
                        w.result = self.run_one(s, w.item)
                except Exception as alone:
                    w.error = alone
            return
        for w, outcome in zip(group, outcomes, strict=True):
            if isinstance(outcome, BaseException):  # refused alone: nothing was written for it
                w.error = outcome
            else:
                w.result = outcome


_GROUPS: weakref.WeakKeyDictionary[Database, dict[type, GroupCommit[Any, Any]]] = weakref.WeakKeyDictionary()
_GROUPS_LOCK = threading.Lock()

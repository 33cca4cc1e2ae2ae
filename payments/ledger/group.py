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
two groups (two processes) therefore never wait on each other in a cycle. The waiting, the
leading and the fallback are :class:`chopay.group.GroupCommit`'s.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from chopay.db import Database
from chopay.group import GroupCommit
from payments.ledger import services
from payments.ledger.domain import Recorded, TransactionSpec


class GroupPoster(GroupCommit[TransactionSpec, Recorded]):
    """Post each transaction durably on its own, committing concurrent ones together."""

    name = "ledger"

    def post(self, spec: TransactionSpec) -> Recorded:
        """Post ``spec`` in a committed transaction (shared with concurrent posts); return it."""
        return self.submit(spec)

    def run_group(self, session: Session, items: list[TransactionSpec]) -> Sequence[Recorded | BaseException]:
        # A refusal (a LedgerError) wrote nothing: post_each answers it in place.
        return services.post_each(session, items)

    def run_one(self, session: Session, item: TransactionSpec) -> Recorded:
        return services.post(session, item)


def poster(database: Database) -> GroupPoster:
    """Return the group poster of ``database`` (one per database, shared by its threads)."""
    return GroupPoster.of(database)


def post_alone(database: Database, spec: TransactionSpec) -> Recorded:
    """Post ``spec`` in a transaction of its own, committed before this returns (group commit)."""
    return poster(database).post(spec)

"""Group commit for the intake: concurrent deliveries in one process share one transaction.

A verified delivery (:class:`~merchants.intake.services.Delivery`) that has nothing else of its
request to commit is recorded through :func:`record_alone`. Concurrent ones then share one unit
of work (:class:`chopay.group.GroupCommit`): :func:`~merchants.intake.services.record_many`
claims, matches, posts and inserts them all with a handful of statements, and one commit makes
them durable together. Each request still answers only after that commit, with its own outcome,
or with its own :class:`~merchants.intake.services.ReusedId`. If the group's transaction fails,
nothing of it is committed and each delivery is recorded alone, so that an error reaches only
the delivery that causes it.

PostgreSQL only: on SQLite every writer holds the one write lock anyway, and the intake records
each delivery in its request's unit of work.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from chopay.db import Database
from chopay.group import GroupCommit
from merchants.intake import services
from merchants.intake.services import Delivery, Outcome


class IntakeGroup(GroupCommit[Delivery, Outcome]):
    """Record each delivery durably on its own, committing concurrent ones together."""

    name = "intake"

    def run_group(self, session: Session, items: list[Delivery]) -> Sequence[Outcome | BaseException]:
        if len(items) == 1:  # alone, the single path costs a statement less
            try:
                return [self.run_one(session, items[0])]
            except services.ReusedId as exc:
                return [exc]
        return services.record_many(session, items)

    def run_one(self, session: Session, item: Delivery) -> Outcome:
        return services.record(session, item.keys, item.incoming, item.body, item.publish)


def record_alone(database: Database, delivery: Delivery) -> Outcome:
    """Record ``delivery`` in a transaction committed before this returns (group commit)."""
    return IntakeGroup.of(database).submit(delivery)

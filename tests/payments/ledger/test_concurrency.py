"""Concurrent posters against a few hot accounts never lose an update or deadlock."""

from __future__ import annotations

import threading

import sqlalchemy as sa

from chopay.db import get_db
from payments.ledger import sequencer, services, tree
from payments.ledger.domain import Posting, TransactionSpec
from payments.ledger.models import Account, Entry
from payments.ledger.models import Posting as PostingRow

HOT = ["hot:a", "hot:b", "hot:c"]


def test_many_threads_on_hot_accounts(committed_app):
    database = get_db(committed_app)
    with database.unit_of_work() as s:
        for code in HOT:
            services.create_account(s, code=code, kind="asset")
    errors: list[BaseException] = []
    threads_n, per_thread = 8, 25

    def worker(t: int) -> None:
        try:
            for i in range(per_thread):
                with database.unit_of_work() as s:
                    # Alternate directions so threads lock the same accounts in opposite posting order.
                    a, b = (HOT[i % 3], HOT[(i + 1) % 3]) if (t + i) % 2 else (HOT[(i + 1) % 3], HOT[i % 3])
                    amount = 1 + t * 1000 + i
                    services.post(
                        s,
                        TransactionSpec(
                            f"t{t}-{i}", "journal", "hot", [Posting(a, amount), Posting(b, -amount)]
                        ),
                    )
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(threads_n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=120)
    assert not errors, errors
    assert not any(th.is_alive() for th in threads)
    with database.session() as s:
        sums = dict(
            s.execute(
                sa.select(Account.code, sa.func.coalesce(sa.func.sum(PostingRow.amount), 0))
                .outerjoin(PostingRow)
                .group_by(Account.code)
            ).all()
        )
        balances = dict(s.execute(sa.select(Account.code, Account.balance)).all())
        assert balances == sums
        assert sum(balances.values()) == 0
        assert s.scalar(sa.select(sa.func.count()).select_from(PostingRow)) == threads_n * per_thread * 2
        # Sequencing after concurrent commits still yields one gap-free order.
        assert sequencer.sequence(s) == threads_n * per_thread
        s.commit()
        assert tree.current_size(s) == threads_n * per_thread


def test_two_sequencers_taking_turns_keep_one_gap_free_log(committed_app):
    database = get_db(committed_app)
    with database.session() as a, database.session() as b:
        for code in HOT[:2]:
            services.create_account(a, code=code, kind="asset")
        a.commit()

        def post(s, key):
            services.post(
                s, TransactionSpec(key, "journal", "turns", [Posting(HOT[0], 5), Posting(HOT[1], -5)])
            )
            s.commit()

        def sequence(s):
            added = sequencer.sequence(s)
            s.commit()
            return added

        post(a, "a1")
        assert sequence(a) == 1  # a now holds the log state in its identity map
        post(b, "b1")
        post(b, "b2")
        assert sequence(b) == 2
        post(a, "a2")
        assert sequence(a) == 1  # must see b's entries, not its own stale size
        indexes = list(a.scalars(sa.select(Entry.idx).order_by(Entry.idx)))
        assert indexes == [0, 1, 2, 3]
        assert tree.current_size(a) == 4

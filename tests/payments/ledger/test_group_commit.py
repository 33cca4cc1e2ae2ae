"""Posts that share one transaction: each keeps its own result, its own refusal and its balances."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from chopay.db import get_db
from chopay.group import Waiting
from payments.ledger import group, services
from payments.ledger.domain import Posting, Recorded, TransactionSpec
from payments.ledger.errors import InsufficientBalance, InvalidTransaction, TransactionKeyConflict
from payments.ledger.group import GroupPoster
from payments.ledger.models import Account, Pending, Transaction
from payments.ledger.models import Posting as PostingRow


def _balances(session):
    return {code: balance for code, balance in session.execute(sa.select(Account.code, Account.balance))}


def _count(session, model):
    return session.scalar(sa.select(sa.func.count()).select_from(model))


def test_post_each_checks_each_post_against_the_balances_the_earlier_ones_leave(book, make_spec):
    services.post(book, make_spec("fund", 1_000, debit="program:TCXH:budget", credit="equity:opening"))
    specs = [
        make_spec("pay-1", 600, debit="payouts:clearing", credit="program:TCXH:budget"),
        # 400 left in the budget: this one would take it below zero, and fails alone.
        make_spec("pay-2", 500, debit="payouts:clearing", credit="program:TCXH:budget"),
        make_spec("pay-3", 400, debit="payouts:clearing", credit="program:TCXH:budget"),
        make_spec("pay-1", 600, debit="payouts:clearing", credit="program:TCXH:budget"),  # a replay
        make_spec("pay-1", 601, debit="payouts:clearing", credit="program:TCXH:budget"),  # a conflict
        # a replay of one committed before
        make_spec("fund", 1_000, debit="program:TCXH:budget", credit="equity:opening"),
        make_spec("nobody", 5, debit="payouts:clearing", credit="nobody:here"),
        make_spec("", 5),  # invalid key
    ]
    before = (_count(book, Transaction), _count(book, PostingRow), _count(book, Pending))

    out = services.post_each(book, specs)

    assert [type(o).__name__ for o in out] == [
        "Recorded",
        "InsufficientBalance",
        "Recorded",
        "Recorded",
        "TransactionKeyConflict",
        "Recorded",
        "InvalidTransaction",
        "InvalidTransaction",
    ]
    first, refused, third, replay, conflict, old, unknown, invalid = out
    assert isinstance(first, Recorded)
    assert isinstance(third, Recorded)
    assert isinstance(replay, Recorded)
    assert isinstance(old, Recorded)
    assert isinstance(refused, InsufficientBalance)
    assert isinstance(conflict, TransactionKeyConflict)
    assert isinstance(unknown, InvalidTransaction)
    assert unknown.code == "account_unknown"
    assert isinstance(invalid, InvalidTransaction)
    assert replay.id == first.id
    assert old.idempotency_key == "fund"
    assert first.id != third.id
    assert [(p.account, p.amount) for p in third.postings] == [
        ("payouts:clearing", 400),
        ("program:TCXH:budget", -400),
    ]
    # Exactly two new transactions, their postings and their queue rows: nothing of the refused.
    assert (_count(book, Transaction), _count(book, PostingRow), _count(book, Pending)) == (
        before[0] + 2,
        before[1] + 4,
        before[2] + 2,
    )
    balances = _balances(book)
    assert balances["program:TCXH:budget"] == 0
    assert balances["payouts:clearing"] == 1_000
    assert services.get_transaction(book, third.id).postings == third.postings


def test_post_each_records_a_key_given_twice_once(book, make_spec):
    out = services.post_each(book, [make_spec("twice", 10), make_spec("twice", 10)])
    assert isinstance(out[0], Recorded)
    assert isinstance(out[1], Recorded)
    assert out[0].id == out[1].id
    assert _balances(book)["payouts:clearing"] == 10


def _spec(key: str, amount: int, debit: str = "payouts:clearing", credit: str = "equity:opening"):
    return TransactionSpec(key, "journal", "grouped", [Posting(debit, amount), Posting(credit, -amount)])


def test_a_leader_commits_every_waiting_post_and_hands_each_its_own_outcome(app, book):
    poster = GroupPoster(get_db(app))
    queued = [
        Waiting(_spec("g-1", 100)),
        Waiting(_spec("g-2", 100, debit="payouts:clearing", credit="program:TCXH:budget")),  # no funds
        Waiting(_spec("g-3", 300)),
    ]
    poster._queue.extend(queued)  # as if these threads waited while another group committed
    # The next thread to post leads: its own post joins the group with every waiting one.
    mine = poster.post(_spec("g-4", 1))

    assert all(w.done for w in queued)
    assert isinstance(queued[0].result, Recorded)
    assert isinstance(queued[2].result, Recorded)
    assert isinstance(queued[1].error, InsufficientBalance)
    assert queued[1].result is None
    assert mine.idempotency_key == "g-4"
    assert _balances(book)["payouts:clearing"] == 401
    assert poster._queue == []


def test_a_group_whose_transaction_fails_is_posted_post_by_post(app, book, monkeypatch):
    def broken(session, specs):
        session.execute(sa.text("SELECT 1"))
        raise RuntimeError("the group's statement failed")

    monkeypatch.setattr(services, "post_each", broken)
    poster = GroupPoster(get_db(app))
    waiting = Waiting(_spec("f-1", 7))
    poster._queue.append(waiting)
    mine = poster.post(_spec("f-2", 5))
    assert isinstance(waiting.result, Recorded)
    assert waiting.error is None
    assert mine.idempotency_key == "f-2"
    assert _balances(book)["payouts:clearing"] == 12


def test_a_lone_post_that_fails_raises_its_own_error(app, book):
    spec = _spec("lone", 5, debit="payouts:clearing", credit="program:TCXH:budget")
    with pytest.raises(InsufficientBalance):
        group.post_alone(get_db(app), spec)
    assert _balances(book)["payouts:clearing"] == 0


def test_concurrent_posters_on_hot_accounts_share_commits_and_lose_nothing(committed_app):
    database = get_db(committed_app)
    hot = ["hot:a", "hot:b", "hot:c"]
    with database.unit_of_work() as s:
        for code in hot:
            services.create_account(s, code=code, kind="asset")
        services.create_account(s, code="hot:capped", kind="asset", allow_negative=False)
    commits: list[int] = []
    poster = GroupPoster(database)
    original = poster._commit

    def counting(members):
        commits.append(len(members))
        original(members)

    poster._commit = counting  # type: ignore[method-assign]
    errors: list[BaseException] = []
    refused: list[str] = []
    threads_n, per_thread = 8, 20

    def worker(t: int) -> None:
        try:
            for i in range(per_thread):
                a, b = hot[(t + i) % 3], hot[(t + i + 1) % 3]
                poster.post(_spec(f"t{t}-{i}", 1 + t * 100 + i, debit=a, credit=b))
                try:  # never funded: refused, and only this post
                    poster.post(_spec(f"c{t}-{i}", 1, debit=a, credit="hot:capped"))
                except InsufficientBalance:
                    refused.append(f"c{t}-{i}")
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(threads_n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=120)
    assert not errors, errors
    assert len(refused) == threads_n * per_thread
    assert sum(commits) == 2 * threads_n * per_thread
    with database.session() as s:
        assert _count(s, Transaction) == threads_n * per_thread
        balances = _balances(s)
        sums = dict(
            s.execute(
                sa.select(Account.code, sa.func.coalesce(sa.func.sum(PostingRow.amount), 0))
                .outerjoin(PostingRow)
                .group_by(Account.code)
            ).all()
        )
        assert balances == sums
        assert balances["hot:capped"] == 0

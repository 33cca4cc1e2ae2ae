"""The double-entry book: posting rules, idempotency, reversals, balances."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from payments.ledger import sequencer, services
from payments.ledger.domain import MAX_AMOUNT, Posting, TransactionSpec
from payments.ledger.errors import (
    AccountExists,
    AlreadyReversed,
    InsufficientBalance,
    InvalidTransaction,
    TransactionKeyConflict,
)
from payments.ledger.models import Account, Transaction
from payments.ledger.models import Posting as PostingRow


def balances(session):
    return {
        a.code: a.balance
        for a in session.scalars(sa.select(Account).execution_options(populate_existing=True))
    }


def counts(session):
    return (
        session.scalar(sa.select(sa.func.count()).select_from(Transaction)),
        session.scalar(sa.select(sa.func.count()).select_from(PostingRow)),
    )


def test_post_updates_balances_in_the_same_transaction(book, make_spec):
    tx = services.post(book, make_spec("k1", 150_000))
    assert [(p.account, p.amount) for p in tx.postings] == [
        ("payouts:clearing", 150_000),
        ("equity:opening", -150_000),
    ]
    assert balances(book)["payouts:clearing"] == 150_000
    assert balances(book)["equity:opening"] == -150_000
    assert tx.log_index is None  # not sequenced yet
    assert services.get_transaction(book, tx.id) == tx


@pytest.mark.parametrize(
    ("postings", "code"),
    [
        ([Posting("payouts:clearing", 100)], "postings_too_few"),
        ([Posting("payouts:clearing", 100), Posting("equity:opening", -99)], "postings_unbalanced"),
        ([Posting("payouts:clearing", 0), Posting("equity:opening", 0)], "posting_zero"),
        (
            [Posting("payouts:clearing", MAX_AMOUNT + 1), Posting("equity:opening", -MAX_AMOUNT - 1)],
            "amount_out_of_range",
        ),
        ([Posting("payouts:clearing", 5), Posting("nobody:here", -5)], "account_unknown"),
        ([Posting("payouts:clearing", 1.5), Posting("equity:opening", -1.5)], "field_invalid"),  # type: ignore[arg-type]
    ],
)
def test_bad_postings_are_refused_and_nothing_is_written(book, postings, code):
    before = (counts(book), balances(book))
    with pytest.raises(InvalidTransaction) as err:
        services.post(book, TransactionSpec("bad", "journal", "bad", postings))
    assert err.value.code == code
    assert err.value.status == 422
    assert (counts(book), balances(book)) == before


def test_metadata_with_a_float_is_refused(book, make_spec):
    with pytest.raises(InvalidTransaction) as err:
        services.post(book, make_spec("k-meta", metadata={"rate": 0.5}))
    assert err.value.code == "metadata_invalid"


def test_no_negative_account_cannot_go_below_zero(book, make_spec):
    services.post(book, make_spec("fund", 1_000_000, debit="program:TCXH:budget", credit="equity:opening"))
    services.post(book, make_spec("pay1", 400_000, debit="payouts:clearing", credit="program:TCXH:budget"))
    before = (counts(book), balances(book))
    assert before[1]["program:TCXH:budget"] == 600_000
    with pytest.raises(InsufficientBalance) as err:
        services.post(
            book, make_spec("pay2", 600_001, debit="payouts:clearing", credit="program:TCXH:budget")
        )
    assert err.value.code == "balance_negative"
    assert (counts(book), balances(book)) == before
    services.post(book, make_spec("pay3", 600_000, debit="payouts:clearing", credit="program:TCXH:budget"))
    assert balances(book)["program:TCXH:budget"] == 0


def test_same_key_same_content_returns_the_original(book, make_spec):
    first = services.post(book, make_spec("dup", 70_000))
    again = services.post(book, make_spec("dup", 70_000))
    assert again.id == first.id
    assert balances(book)["payouts:clearing"] == 70_000
    assert counts(book) == (1, 2)


def test_same_key_different_content_is_a_conflict(book, make_spec):
    services.post(book, make_spec("dup", 70_000))
    with pytest.raises(TransactionKeyConflict) as err:
        services.post(book, make_spec("dup", 70_001))
    assert err.value.status == 409
    assert err.value.code == "idempotency_key_reused"
    assert balances(book)["payouts:clearing"] == 70_000


def test_reversal_mirrors_and_links_and_happens_once(book, make_spec):
    original = services.post(book, make_spec("orig", 25_000))
    rev = services.reverse(book, original.id, key="rev-1", reason="entered twice")
    assert rev.reverses_id == original.id
    assert [(p.account, p.amount) for p in rev.postings] == [
        ("payouts:clearing", -25_000),
        ("equity:opening", 25_000),
    ]
    assert balances(book)["payouts:clearing"] == 0
    assert services.reverse(book, original.id, key="rev-1", reason="entered twice").id == rev.id
    with pytest.raises(AlreadyReversed):
        services.reverse(book, original.id, key="rev-2", reason="again")
    assert balances(book)["payouts:clearing"] == 0


def test_batch_posts_all_or_nothing(book, make_spec):
    ids = services.post_many(book, [make_spec(f"b{i}", 1_000 + i) for i in range(50)])
    assert len(ids) == len(set(ids)) == 50
    assert balances(book)["payouts:clearing"] == sum(1_000 + i for i in range(50))
    before = (counts(book), balances(book))
    with pytest.raises(InvalidTransaction):
        services.post_many(book, [make_spec("c1"), make_spec("c2", debit="ghost:account")])
    assert (counts(book), balances(book)) == before
    # Replaying the batch returns the same ids and posts nothing new.
    assert services.post_many(book, [make_spec(f"b{i}", 1_000 + i) for i in range(50)]) == ids
    assert (counts(book), balances(book)) == before


def test_batch_with_a_repeated_key_is_refused(book, make_spec):
    with pytest.raises(InvalidTransaction):
        services.post_many(book, [make_spec("same"), make_spec("same")])


def test_point_in_time_balance_by_instant_and_by_log_size(book, make_spec):
    t0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    for i in range(4):
        services.post(book, make_spec(f"t{i}", 10_000, occurred_at=t0 + dt.timedelta(days=i)))
    sequencer.sequence(book)
    assert services.balance(book, "payouts:clearing") == 40_000
    assert services.balance(book, "payouts:clearing", t0 + dt.timedelta(days=1, hours=1)) == 20_000
    assert services.balance(book, "payouts:clearing", t0 - dt.timedelta(seconds=1)) == 0
    assert services.balance(book, "payouts:clearing", 3) == 30_000
    assert services.balance(book, "payouts:clearing", 0) == 0


def test_accounts_are_unique(book):
    with pytest.raises(AccountExists):
        services.create_account(book, code="bank:settlement", kind="asset")
    with pytest.raises(InvalidTransaction):
        services.create_account(book, code="x", kind="treasure")
    with pytest.raises(InvalidTransaction):
        services.create_account(book, code="has space", kind="asset")

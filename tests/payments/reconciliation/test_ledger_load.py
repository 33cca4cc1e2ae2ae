"""The ledger side of a reconciliation: items and balances of one account at a pinned tree size.

PostgreSQL reads them in one streamed pass (``_load_postgresql``); every database can use the
generic two-query path (``_load_generic``). Both must give the same items, in log order, and
the same balances.
"""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from flask import Flask

from chopay.db import get_db
from payments.ledger import services as ledger_services
from payments.ledger.domain import Posting, TransactionSpec
from payments.reconciliation import ledger
from payments.reconciliation.domain import LedgerItem, LedgerKind
from payments.reconciliation.items import LedgerItems
from payments.reconciliation.ledger import day_start
from tests.payments.reconciliation.conftest import BENEFITS, BUDGET, FUNDING, Book

BEFORE, D1 = dt.date(2026, 11, 30), dt.date(2026, 12, 1)
D2, AFTER = dt.date(2026, 12, 2), dt.date(2026, 12, 3)
PERIOD = (D1, D2)


def _fill_book(app: Flask, book: Book) -> int:
    """Post a varied account history, seal it, post once more; return the sealed tree size."""
    book.fund("fund:1", 50_000_000, BEFORE, funding_ref="FUND1")
    book.payout("PA1", 1_000_000, D1, bank_txn_id="FB1", batch="B1")
    book.payout("PA2", 2_000_000, D1, batch=7)  # an integer reference
    paid = book.payout("PA3", 3_000_000, D2, bank_txn_id="FB3", retry_of="PA0")
    with get_db(app).unit_of_work() as s:
        # Two postings of one transaction on the account make one item.
        ledger_services.post(
            s,
            TransactionSpec(
                "split:1",
                "payout",
                "split payout",
                [Posting(BUDGET, -400_000), Posting(BUDGET, -600_000), Posting(BENEFITS, 1_000_000)],
                occurred_at=day_start(D2) + dt.timedelta(hours=11),
                metadata={"payout_ref": "PS1"},
            ),
        )
        ledger_services.reverse(
            s,
            paid.id,
            key="reverse:PA3",
            reason="returned",
            metadata={"payout_ref": "PA3", "reason_code": "returned"},
            occurred_at=day_start(D2) + dt.timedelta(hours=12),
        )
    book.post("other:1", "transfer", 5_000, D2, FUNDING)
    book.payout("PA4", 4_000_000, AFTER)
    book.seal()
    with get_db(app).read_session() as s:
        size = int(s.scalar(sa.text("SELECT max(idx) + 1 FROM ledger_entries")))
    book.payout("PA5", 5_000_000, D1)  # committed after the pinned state: not part of it
    return size


def _expected(app: Flask) -> list[tuple[str, int, LedgerKind, dict[str, str]]]:
    return [
        ("PA1", -1_000_000, LedgerKind.PAYOUT, {"bank_txn_id": "FB1", "batch": "B1"}),
        ("PA2", -2_000_000, LedgerKind.PAYOUT, {"batch": "7"}),
        ("PA3", -3_000_000, LedgerKind.PAYOUT, {"bank_txn_id": "FB3", "retry_of": "PA0"}),
        ("PS1", -1_000_000, LedgerKind.PAYOUT, {}),
        ("PA3", 3_000_000, LedgerKind.PAYOUT_REVERSAL, {"reason_code": "returned"}),
        ("", 5_000, LedgerKind.OTHER, {}),
    ]


def _items(side: ledger.LedgerSide) -> list[LedgerItem]:
    assert isinstance(side.items, LedgerItems)
    return list(side.items)


def test_load_reads_the_period_below_the_tree_size(app, book):
    size = _fill_book(app, book)
    with get_db(app).read_session() as s:
        side = ledger.load(s, BUDGET, tree_size=size, period=PERIOD)
    items = _items(side)
    got = [
        (
            it.payout_ref or "",
            it.amount,
            it.kind,
            {k: v for k in ("bank_txn_id", "batch", "retry_of", "reason_code") if (v := getattr(it, k))},
        )
        for it in items
    ]
    assert got == _expected(app)
    assert [it.log_index for it in items] == sorted(it.log_index for it in items)
    assert {it.occurred for it in items} == {D1, D2}
    assert side.opening == 50_000_000
    moved = -1_000_000 - 2_000_000 - 3_000_000 - 1_000_000 + 3_000_000 + 5_000
    assert side.closing == 50_000_000 + moved
    assert side.at_tree_size == 50_000_000 + moved - 4_000_000


def test_an_unknown_account_has_nothing(app, book):
    with get_db(app).read_session() as s:
        side = ledger.load(s, "program:NONE:budget", tree_size=10, period=PERIOD)
    assert (len(side.items), side.opening, side.closing, side.at_tree_size) == (0, 0, 0, 0)


@pytest.mark.postgresql_only
def test_the_streamed_postgresql_load_equals_the_generic_one(app, book):
    size = _fill_book(app, book)
    with get_db(app).unit_of_work() as s:
        # Transactions that commit out of order get log indexes out of id order: swap two.
        a, b = s.execute(
            sa.text(
                "SELECT e.idx FROM ledger_entries e JOIN ledger_transactions t ON t.id = e.transaction_id "
                "WHERE t.idempotency_key IN ('payout:PA1', 'payout:PA3') ORDER BY e.idx"
            )
        ).scalars()
        swap = sa.text("UPDATE ledger_entries SET idx = :new WHERE idx = :old")
        for old, new in ((a, -1), (b, a), (-1, b)):
            s.execute(swap, {"new": new, "old": old})
    for period in (PERIOD, (D1, D1), (BEFORE, AFTER), (AFTER, AFTER)):
        with get_db(app).read_session() as s:
            acct = ledger.account_id(s, BUDGET)
            assert acct is not None
            fast = ledger._load_postgresql(s, acct, tree_size=size, period=period)
        with get_db(app).read_session() as s:
            generic = ledger._load_generic(s, acct, tree_size=size, period=period)
        assert _items(fast) == _items(generic)
        assert (fast.opening, fast.closing, fast.at_tree_size) == (
            generic.opening,
            generic.closing,
            generic.at_tree_size,
        )
    with get_db(app).read_session() as s:
        items = _items(ledger.load(s, BUDGET, tree_size=size, period=PERIOD))
    assert [it.payout_ref for it in items[:3]] == ["PA3", "PA2", "PA1"]  # log order, not id order
    assert [it.log_index for it in items] == sorted(it.log_index for it in items)


def test_sort_by_log_orders_every_column():
    items = LedgerItems(
        [
            LedgerItem("TX-0000000003", 9, -3, D2, LedgerKind.PAYOUT, payout_ref="P3"),
            LedgerItem("odd-id", 4, -1, D1, LedgerKind.OTHER, batch="B"),
            LedgerItem("TX-0000000002", 6, 2, D1, LedgerKind.FUNDING, funding_ref="F2"),
        ]
    )
    expected = sorted(items, key=lambda it: it.log_index)
    items.sort_by_log()
    assert list(items) == expected
    assert items.transaction(0) == "odd-id"

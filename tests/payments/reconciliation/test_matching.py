"""The matching engine: planted discrepancies in every format, properties, determinism, balances."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import random
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from payments.reconciliation.domain import Category, LedgerItem, LedgerKind, MatchConfig, Rule
from payments.reconciliation.items import LedgerItems
from payments.reconciliation.matching import reconcile
from payments.reconciliation.statements import Statement, read_camt053, read_csv, read_mt940
from tests.payments.reconciliation.writers import camt053, line, mt940, simulator_csv

D1, D2, D3 = dt.date(2026, 11, 2), dt.date(2026, 11, 3), dt.date(2026, 11, 4)
OPENING = 10_000_000

# One discrepancy of each kind, and one line for each way of matching.
PLANTED = [
    (line("FB0001", D1, -150_000, "P0001", "CHI TRA TRO CAP P0001"), Category.MATCHED, "TX-1"),
    (line("FB0002", D1, -200_000, "P0002", "CHI TRA TRO CAP P0002"), Category.MATCHED, "TX-2"),
    (line("FB0003", D2, -150_000, "P0001", "CHI TRA TRO CAP P0001"), Category.DUPLICATE_IN_BANK, None),
    (line("FB0004", D2, -480_000, "P0003", "CHI TRA TRO CAP P0003"), Category.AMOUNT_MISMATCH, "TX-3"),
    (line("FB0005", D2, 150_000, "P0001", "RETURN P0001 tai khoan dong"), Category.RETURNED, None),
    (line("FB0006", D3, 77_000, "", "Nguyen Van Test chuyen tien"), Category.MISSING_IN_LEDGER, None),
    (line("FB0007", D3, -300_000, "B20261101", "CHI TRA THEO LO B20261101"), Category.MATCHED, "TX-4 TX-5"),
    (line("FB0008", D3, 50_000, "", "MBVCB.3312.CP7K2M9QXB.thanh toan"), Category.SUGGESTED, "TX-6"),
    (line("FB0009", D3, 2_000_000, "", "NAP NGAN SACH FUND202611"), Category.MATCHED, "TX-8"),
]
ITEMS = [
    LedgerItem("TX-1", 1, -150_000, D1, LedgerKind.PAYOUT, payout_ref="P0001", bank_txn_id="FB0001"),
    LedgerItem("TX-2", 2, -200_000, D1, LedgerKind.PAYOUT, payout_ref="P0002"),
    LedgerItem("TX-3", 3, -500_000, D1, LedgerKind.PAYOUT, payout_ref="P0003"),
    LedgerItem("TX-4", 4, -100_000, D2, LedgerKind.PAYOUT, payout_ref="P0004", batch="B20261101"),
    LedgerItem("TX-5", 5, -200_000, D2, LedgerKind.PAYOUT, payout_ref="P0005", batch="B20261101"),
    LedgerItem("TX-6", 6, 50_000, D3, LedgerKind.RECEIPT, intent="CP7K2M9QXA"),
    LedgerItem("TX-7", 7, -99_000, D2, LedgerKind.PAYOUT, payout_ref="P0009"),
    LedgerItem("TX-8", 8, 2_000_000, D3, LedgerKind.FUNDING, funding_ref="FUND202611"),
]
LEDGER_BALANCE = OPENING + sum(i.amount for i in ITEMS)


def statement_in(fmt: str) -> Statement:
    lines = [x for x, _, _ in PLANTED]
    period = (dt.date(2026, 11, 1), dt.date(2026, 11, 30))
    if fmt == "csv":
        return read_csv(io.BytesIO(simulator_csv(lines, OPENING)))
    if fmt == "mt940":
        return read_mt940(io.BytesIO(mt940(lines, OPENING, period=period)))
    return read_camt053(io.BytesIO(camt053(lines, OPENING, version=fmt[-2:], period=period)))


@pytest.mark.parametrize("fmt", ["csv", "camt053.001.02", "camt053.001.08", "mt940"])
def test_each_planted_discrepancy_is_found_once_and_nothing_else(fmt):
    result = reconcile(statement_in(fmt), ITEMS, ledger_balance=LEDGER_BALANCE, ledger_opening=OPENING)
    matches = list(result.matches())
    by_line = {m.line.line_id: m for m in matches if m.line}
    for planted, category, txs in PLANTED:
        m = by_line[planted.line_id]
        assert m.category == category, planted.line_id
        assert " ".join(i.transaction for i in m.items) == (txs or "")
    missing = [m for m in matches if m.category == Category.MISSING_IN_BANK]
    assert [m.items[0].transaction for m in missing] == ["TX-7"]
    counts = Counter(m.category for m in matches)
    assert counts == {
        Category.MATCHED: 4,
        Category.SUGGESTED: 1,
        Category.MISSING_IN_LEDGER: 1,
        Category.MISSING_IN_BANK: 1,
        Category.AMOUNT_MISMATCH: 1,
        Category.DUPLICATE_IN_BANK: 1,
        Category.RETURNED: 1,
    }
    assert by_line["FB0003"].related.transaction == "TX-1"
    assert by_line["FB0005"].related.transaction == "TX-1"
    assert by_line["FB0008"].score >= 85
    assert [by_line[f"FB000{i}"].rule for i in (1, 2, 7, 8)] == [
        Rule.BANK_TXN_ID,
        Rule.REFERENCE,
        Rule.MANY_TO_ONE,
        Rule.TOLERANT,
    ]
    assert result.balance.fully_explained
    assert result.balance.difference == sum(m.difference for m in matches) == 196_000
    assert result.totals[Category.AMOUNT_MISMATCH].difference == 20_000
    assert result.totals[Category.MISSING_IN_BANK].ledger_amount == -99_000
    every_item = [i.transaction for m in matches for i in m.items]
    assert sorted(every_item) == sorted(i.transaction for i in ITEMS)
    assert len(result) == len(matches) == len(PLANTED) + 1


def test_unexplained_difference_is_reported():
    result = reconcile(statement_in("csv"), ITEMS, ledger_balance=LEDGER_BALANCE + 5, ledger_opening=OPENING)
    assert not result.balance.fully_explained
    assert result.balance.unexplained == -5
    opening_off = reconcile(
        statement_in("csv"), ITEMS, ledger_balance=LEDGER_BALANCE - 7, ledger_opening=OPENING - 7
    )
    assert opening_off.balance.opening_difference == 7
    assert opening_off.balance.fully_explained


def test_output_does_not_depend_on_item_order():
    statement = statement_in("csv")
    first = [
        (m.category, m.line_index, [i.transaction for i in m.items])
        for m in reconcile(statement, ITEMS, ledger_balance=LEDGER_BALANCE).matches()
    ]
    shuffled = ITEMS[:]
    random.Random(7).shuffle(shuffled)
    second = [
        (m.category, m.line_index, [i.transaction for i in m.items])
        for m in reconcile(statement, shuffled, ledger_balance=LEDGER_BALANCE).matches()
    ]
    assert first == second


def test_a_booked_reversal_matches_the_return_and_history_explains_an_old_payout():
    statement = statement_in("csv")
    reversal = LedgerItem(
        "TX-9", 9, 150_000, D2, LedgerKind.PAYOUT_REVERSAL, payout_ref="P0001", reason_code="returned"
    )
    result = reconcile(statement, [*ITEMS, reversal], ledger_balance=LEDGER_BALANCE + 150_000)
    returned = next(m for m in result.matches() if m.line and m.line.line_id == "FB0005")
    assert returned.category == Category.MATCHED
    assert returned.items == (reversal,)
    # The return of a payout made before the period is still recognised.
    old = LedgerItem("TX-0", 0, -150_000, dt.date(2026, 10, 30), LedgerKind.PAYOUT, payout_ref="P0001")
    without = [i for i in ITEMS if i.transaction != "TX-1"]
    result = reconcile(statement, without, ledger_balance=0, history=[old])
    returned = next(m for m in result.matches() if m.line and m.line.line_id == "FB0005")
    assert returned.category == Category.RETURNED
    assert returned.related is old


def test_retry_of_reference_marks_a_second_debit_as_duplicate():
    lines = [line("FB1", D1, -100_000, "R1", "CHI TRA R1"), line("FB2", D2, -100_000, "R2", "CHI TRA R2")]
    statement = read_csv(io.BytesIO(simulator_csv(lines, 1_000_000)))
    retried = LedgerItem(
        "TX-1", 1, -100_000, D2, LedgerKind.PAYOUT, payout_ref="R2", retry_of="R1", bank_txn_id="FB2"
    )
    result = reconcile(statement, [retried], ledger_balance=900_000)
    assert [m.category for m in result.matches()] == [Category.DUPLICATE_IN_BANK, Category.MATCHED]


def test_many_to_one_by_several_references_in_one_entry():
    lines = [line("FB1", D1, -300_000, "P0004 P0005", "lo")]
    statement = read_csv(io.BytesIO(simulator_csv(lines, 1_000_000)))
    items = [i for i in ITEMS if i.transaction in ("TX-4", "TX-5")]
    (m,) = reconcile(statement, items, ledger_balance=700_000).matches()
    assert (m.category, m.rule, [i.transaction for i in m.items]) == (
        Category.MATCHED,
        Rule.MANY_TO_ONE,
        ["TX-4", "TX-5"],
    )


def test_tolerant_rule_respects_the_window_and_threshold():
    lines = [line("FB1", dt.date(2026, 11, 10), 50_000, "", "thanh toan CP7K2M9QXB")]
    statement = read_csv(io.BytesIO(simulator_csv(lines, 0)))
    item = dataclasses.replace(ITEMS[5], occurred=D3)
    near = reconcile(statement, [item], ledger_balance=50_000, config=MatchConfig(date_window_days=6))
    assert [m.category for m in near.matches()] == [Category.SUGGESTED]
    far = reconcile(statement, [item], ledger_balance=50_000, config=MatchConfig(date_window_days=5))
    assert [m.category for m in far.matches()] == [Category.MISSING_IN_LEDGER, Category.MISSING_IN_BANK]
    strict = reconcile(
        statement, [item], ledger_balance=50_000, config=MatchConfig(date_window_days=9, fuzzy_threshold=95)
    )
    assert [m.category for m in strict.matches()] == [Category.MISSING_IN_LEDGER, Category.MISSING_IN_BANK]


def test_tolerant_rule_is_bounded():
    lines = [line(f"FB{i}", D1, 10_000, "", f"khong ro QX{i:04d}") for i in range(50)]
    statement = read_csv(io.BytesIO(simulator_csv(lines, 0)))
    items = [LedgerItem(f"TX-{i}", i, 10_000, D1, payout_ref=f"ZZ{i:08d}") for i in range(500)]
    result = reconcile(
        statement, items, ledger_balance=0, config=MatchConfig(max_candidates=20, max_fuzzy_comparisons=300)
    )
    assert result.stats.capped == 15
    assert result.stats.not_examined == 35
    # Each line scores 20 candidates and stops at the 21st; after 15 lines the budget is spent.
    assert result.stats.fuzzy_comparisons == 15 * 21


def test_from_leaf_reads_amount_references_and_vietnam_date():
    leaf = {
        "tx": "TX-0000000042",
        "index": 41,
        "kind": "payout",
        "occurred_at": "2026-11-01T18:00:00.000000Z",
        "metadata": {"payout_ref": "P0001", "bank_txn_id": "FB0001", "batch": "B1", "program": "TCXH"},
        "postings": [
            {"account": "program:TCXH:benefits", "amount": 150_000},
            {"account": "program:TCXH:budget", "amount": -150_000},
        ],
        "reverses": None,
    }
    item = LedgerItem.from_leaf(leaf, "program:TCXH:budget")
    assert item == LedgerItem(
        "TX-0000000042",
        41,
        -150_000,
        dt.date(2026, 11, 2),
        LedgerKind.PAYOUT,
        payout_ref="P0001",
        bank_txn_id="FB0001",
        batch="B1",
    )
    assert LedgerItem.from_leaf(leaf, "bank:other") is None
    reversal = {
        **leaf,
        "kind": "reversal",
        "reverses": "TX-0000000042",
        "postings": [
            {"account": "program:TCXH:budget", "amount": 150_000},
            {"account": "program:TCXH:benefits", "amount": -150_000},
        ],
    }
    assert LedgerItem.from_leaf(reversal, "program:TCXH:budget").kind == LedgerKind.PAYOUT_REVERSAL


# -- property: statements built from random ledger subsets with planted differences ---------------

ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
refs = st.text(st.sampled_from(ALPHABET), min_size=12, max_size=12)


@st.composite
def scenarios(draw):
    n = draw(st.integers(1, 25))
    names = draw(st.lists(refs, min_size=n + 8, max_size=n + 8, unique=True))
    amounts = draw(st.lists(st.integers(1, 10**9), min_size=n, max_size=n, unique=True))
    items = []
    for i in range(n):
        sign = draw(st.sampled_from([-1, 1]))
        with_id = draw(st.booleans())
        items.append(
            LedgerItem(
                f"TX-{i}",
                i,
                sign * amounts[i],
                D1 + dt.timedelta(days=draw(st.integers(0, 3))),
                LedgerKind.PAYOUT if sign < 0 else LedgerKind.FUNDING,
                payout_ref=names[i] if sign < 0 else None,
                funding_ref=names[i] if sign > 0 else None,
                bank_txn_id=f"FB{i:06d}" if with_id else None,
            )
        )
    roles = draw(
        st.lists(
            st.sampled_from(["matched", "missing_in_bank", "amount_mismatch", "suggested"]),
            min_size=n,
            max_size=n,
        )
    )
    extra = draw(st.lists(st.sampled_from(["duplicate", "returned", "missing_in_ledger"]), max_size=6))
    return items, roles, extra, names[n:]


@settings(max_examples=120, deadline=None)
@given(scenarios(), st.sampled_from(["csv", "camt", "mt940"]))
def test_planted_differences_and_nothing_else(scenario, fmt):
    items, roles, extra, spare = scenario
    lines, expected = [], {}
    matched = []
    for item, role in zip(items, roles, strict=True):
        ref = item.payout_ref or item.funding_ref
        day = item.occurred
        if role == "missing_in_bank":
            expected[item.transaction] = Category.MISSING_IN_BANK
            continue
        line_id = item.bank_txn_id or f"ZB{item.log_index:06d}"
        if role == "matched":
            lines.append((line(line_id, day, item.amount, ref, f"CHUYEN TIEN {ref}"), Category.MATCHED))
            matched.append(item)
        elif role == "amount_mismatch":
            lines.append(
                (
                    line(line_id, day, item.amount + (1 if item.amount > 0 else -1), ref, ""),
                    Category.AMOUNT_MISMATCH,
                )
            )
        else:  # a reference one character off, no id: only the tolerant rule can find it
            typo = ref[:5] + ("2" if ref[5] != "2" else "3") + ref[6:]
            lines.append(
                (line(f"ZS{item.log_index:06d}", day, item.amount, "", f"TT {typo}"), Category.SUGGESTED)
            )
    for k, kind in enumerate(extra):
        day = dt.date(2026, 11, 8)
        if kind == "duplicate" and matched:
            source = matched[k % len(matched)]
            ref = source.payout_ref or source.funding_ref
            lines.append((line(f"ZD{k:06d}", day, source.amount, ref, ""), Category.DUPLICATE_IN_BANK))
        elif kind == "returned" and any(i.amount < 0 for i in items):
            payout = next(i for i in items if i.amount < 0)
            lines.append(
                (line(f"ZR{k:06d}", day, -payout.amount, payout.payout_ref, "RETURN"), Category.RETURNED)
            )
        else:
            lines.append(
                (
                    line(f"ZM{k:06d}", day, 10**10 + k, "", f"Nguyen Van Test {spare[k]}"),
                    Category.MISSING_IN_LEDGER,
                )
            )
    lines.sort(key=lambda pair: pair[0].booking_date)
    plain = [x for x, _ in lines]
    period = (dt.date(2026, 11, 1), dt.date(2026, 11, 30))
    if not plain:
        return
    data = {
        "csv": lambda: read_csv(io.BytesIO(simulator_csv(plain, 0))),
        "camt": lambda: read_camt053(io.BytesIO(camt053(plain, 0, period=period))),
        "mt940": lambda: read_mt940(io.BytesIO(mt940(plain, 0, period=period))),
    }[fmt]()
    ledger = sum(i.amount for i in items)
    result = reconcile(data, items, ledger_balance=ledger, ledger_opening=0)
    found = list(result.matches())
    assert [m.category for m in found if m.line] == [c for _, c in lines]
    for m in found:
        for item in m.items:
            assert expected.pop(item.transaction, m.category) == m.category
    assert not expected
    assert Counter(i.transaction for m in found for i in m.items) == Counter(i.transaction for i in items)
    assert result.balance.fully_explained


def test_columnar_items_read_back_as_items():
    odd = LedgerItem("manual-7", 3, 5, D2, LedgerKind.OTHER, reason_code="returned")
    store = LedgerItems([*ITEMS, odd])
    assert list(store) == [*ITEMS, odd]
    assert store[-1] == odd
    assert store[1:3] == ITEMS[1:3]
    assert store.transaction(0) == "TX-1"
    assert store.reference("batch", 3) == "B20261101"
    assert store.reference("retry_of", 0) is None
    assert list(store.amounts) == [i.amount for i in ITEMS] + [5]
    with pytest.raises(TypeError, match="unknown reference"):
        store.append("TX-0000000009", 9, 1, D1, name="Nguyen Van Test")
    with pytest.raises(IndexError):
        store[len(store)]
    canonical = LedgerItems([LedgerItem("TX-0000000042", 1, -1, D1)])
    assert canonical[0].transaction == "TX-0000000042"


def test_statement_lines_read_back_and_cannot_change():
    statement = statement_in("camt053.001.08")
    planted = [x for x, _, _ in PLANTED]
    assert [dataclasses.replace(x, source="") for x in statement.lines] == planted
    assert statement.lines[0].source == "/Document/BkToCstmrStmt/Stmt[1]/Ntry[1]"
    assert statement.lines[-1].source == "/Document/BkToCstmrStmt/Stmt[1]/Ntry[9]"
    assert statement.lines[2:4] == list(statement.lines)[2:4]
    with pytest.raises(TypeError, match="cannot change"):
        statement.lines.append(planted[0])
    assert statement_in("csv").lines[3].source == "line 5"


def test_outcomes_are_matches_by_position():
    result = reconcile(statement_in("csv"), ITEMS, ledger_balance=LEDGER_BALANCE)
    by_position = [
        (o.category, o.line_index, tuple(result.items[p] for p in o.items), o.rule, o.related, o.difference)
        for o in result.outcomes()
    ]
    assert by_position == [
        (m.category, m.line_index, m.items, m.rule, m.related, m.difference) for m in result.matches()
    ]
    assert [o.line_index for o in result.outcomes(Category.MISSING_IN_BANK)] == [None]

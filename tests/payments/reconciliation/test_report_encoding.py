"""The report writer's fast encoder: the same COPY rows and canonical lines as the generic path."""

from __future__ import annotations

import io

from psycopg._copy_base import TextFormatter
from psycopg.adapt import Transformer

from payments.reconciliation.domain import LedgerItem, LedgerKind
from payments.reconciliation.matching import reconcile
from payments.reconciliation.report import _row, copy_line, encoded_rows, item_line, report_items
from payments.reconciliation.statements import read_csv
from tests.payments.reconciliation.test_matching import D3, ITEMS, LEDGER_BALANCE, OPENING, PLANTED
from tests.payments.reconciliation.writers import line, simulator_csv

# Lines whose text needs escaping in COPY or JSON, matched by id and by reference.
ODD = [
    line("FB\\0010", D3, -10_000, 'P"10\\x', 'CHI TRA "P10" \\ tab\tnew dòng'),
    line("FB0011", D3, -11_000, "P0011", "Nguyễn Văn Test \\N"),
    line("FB0012", D3, -12_000, "", "TX\\N P0012"),
]
ODD_ITEMS = [
    LedgerItem("TX-9", 9, -10_000, D3, LedgerKind.PAYOUT, payout_ref="P10X", bank_txn_id="FB\\0010"),
    LedgerItem("TX-10", 10, -11_000, D3, LedgerKind.PAYOUT, payout_ref="P0011"),
    LedgerItem('TX-"11"', 11, -12_000, D3, LedgerKind.PAYOUT, payout_ref="P0012"),
]


def _result():
    lines = [x for x, _, _ in PLANTED] + ODD
    statement = read_csv(io.BytesIO(simulator_csv(lines, OPENING)))
    items = [*ITEMS, *ODD_ITEMS]
    return reconcile(statement, items, ledger_balance=LEDGER_BALANCE + sum(i.amount for i in ODD_ITEMS))


def test_fast_rows_equal_the_generic_rows_and_lines():
    result = _result()
    generic = [(copy_line(_row(42, item)), item_line(item)) for item in report_items(result)]
    fast = list(encoded_rows(result, 42))
    assert fast == generic
    categories = {item.category for item in report_items(result)}
    assert len(categories) == 7  # every kind of item went through the comparison
    odd = list(report_items(result))[len(PLANTED) : len(PLANTED) + len(ODD)]
    assert [item.category for item in odd] == ["matched"] * len(ODD)  # the fast case, with escaping
    assert "\\\\" in fast[len(PLANTED)][0]
    assert '\\"' in fast[len(PLANTED) + 2][1]


def test_copy_line_is_what_psycopg_sends():
    for item in report_items(_result()):
        formatter = TextFormatter(Transformer())
        formatter.write_row(_row(42, item))
        assert copy_line(_row(42, item)).encode() == bytes(formatter.end())


def test_a_reversal_line_is_encoded_as_the_generic_path_does():
    result = _result()
    lines = result.statement.lines
    lines.reversals[0] = 1  # as camt.053 marks a reversal
    fast = list(encoded_rows(result, 7))
    assert fast == [(copy_line(_row(7, item)), item_line(item)) for item in report_items(result)]
    assert '"reversal":true' in fast[0][1]
    assert lines[0].reversal

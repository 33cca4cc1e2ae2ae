"""The reconciliation API: planted discrepancies in every format, found once, through the rq job."""

from __future__ import annotations

import pytest

from payments.reconciliation.domain import Category
from tests.chopay.helpers import assert_problem
from tests.payments.reconciliation.conftest import BUDGET, run_jobs, upload
from tests.payments.reconciliation.planted import (
    EXPECTED,
    FORMATS,
    MISSING_IN_BANK,
    PLANTED,
    post_ledger,
    statement,
)


def _all_items(client, headers, rid, **query):
    items, cursor = [], None
    while True:
        params = {"limit": 3, **query} | ({"cursor": cursor} if cursor else {})
        resp = client.get(f"/v1/reconciliations/{rid}/items", headers=headers, query_string=params)
        assert resp.status_code == 200, resp.json
        items += resp.json["items"]
        cursor = resp.json["next_cursor"]
        if cursor is None:
            return items


@pytest.mark.parametrize("fmt", FORMATS)
def test_each_planted_discrepancy_is_found_once_through_the_api(app, client, auditor, book, fmt):
    txs = post_ledger(book)
    data, fields = statement(fmt)
    resp = upload(client, auditor, data, **fields)
    assert resp.status_code == 202, resp.json
    rid = resp.json["id"]
    assert resp.json["status"] == "queued"
    assert resp.json["statement"]["lines"] == len(PLANTED)
    assert run_jobs(app) >= 1

    rec = client.get(f"/v1/reconciliations/{rid}", headers=auditor).json
    assert rec["status"] == "done", rec
    assert rec["progress"] == 100
    assert {c: t["count"] for c, t in rec["totals"].items()} == {c.value: n for c, n in EXPECTED.items()}
    assert rec["balance"]["fully_explained"] is True
    assert rec["balance"]["unexplained"] == 0
    assert rec["checkpoint"]["size"] >= len(txs)
    assert rec["checkpoint"]["note"].startswith("chopay.local/ledger\n")
    assert len(rec["seal"]["report_digest"]) == 64

    items = _all_items(client, auditor, rid)
    by_line = {i["line"]["line_id"]: i for i in items if i["line"]}
    for planted, category, refs in PLANTED:
        item = by_line[planted.line_id]
        assert item["category"] == category, planted.line_id
        assert item["transactions"] == [txs[r] for r in refs.split()], planted.line_id
        assert item["line"]["description"] == planted.description
    assert by_line["FB0003"]["related"] == txs["P0001"]
    assert by_line["FB0005"]["related"] == txs["P0001"]
    missing = [i for i in items if i["category"] == Category.MISSING_IN_BANK]
    assert [i["transactions"] for i in missing] == [[txs[MISSING_IN_BANK]]]
    assert missing[0]["ledger_reference"] == MISSING_IN_BANK
    assert [i["position"] for i in items] == list(range(len(PLANTED) + 1))

    suggested = _all_items(client, auditor, rid, category="suggested")
    assert [i["line"]["line_id"] for i in suggested] == ["FB0008"]
    assert suggested[0]["score"] >= 85


def test_the_same_statement_imported_twice_returns_the_first_import(app, client, auditor, book):
    post_ledger(book)
    data, fields = statement("camt053.001.02")
    first = upload(client, auditor, data, **fields)
    assert first.status_code == 202
    again = upload(client, auditor, statement("camt053.001.08")[0], **fields)
    assert again.status_code == 200
    assert again.json["id"] == first.json["id"]
    other = upload(client, auditor, data, account="program:TCXH:benefits", **fields)
    body = assert_problem(other, 409, "statement_imported")
    assert body["reconciliation"] == first.json["id"]
    listed = client.get("/v1/reconciliations", headers=auditor).json
    assert [r["id"] for r in listed["items"]] == [first.json["id"]]


def test_report_csv_lists_every_item(app, client, auditor, book):
    post_ledger(book)
    data, fields = statement("csv")
    rid = upload(client, auditor, data, **fields).json["id"]
    run_jobs(app)
    resp = client.get(f"/v1/reconciliations/{rid}/report.csv", headers=auditor)
    assert resp.status_code == 200
    assert resp.mimetype == "text/csv"
    rows = resp.get_data(as_text=True).splitlines()
    assert rows[0].startswith("position,category,rule,line_id")
    assert len(rows) == 1 + len(PLANTED) + 1
    assert rows[6].split(",")[:4] == ["5", "missing_in_ledger", "", "FB0006"]


def test_unknown_account_is_refused_before_the_file_is_read(client, auditor, book):
    data, fields = statement("csv")
    resp = upload(client, auditor, data, account="program:NONE:budget", **fields)
    assert_problem(resp, 422, "account_unknown")
    assert client.get("/v1/reconciliations", headers=auditor).json["items"] == []


def test_account_is_a_ledger_code(client, auditor):
    resp = upload(client, auditor, b"x", account="not a code")
    assert_problem(resp, 422, "validation_failed")


def test_the_budget_account_is_used(book):
    assert BUDGET == "program:TCXH:budget"

"""Paying a batch through the payOS protocol against the in-process simulator, on SQLite and PostgreSQL.

The officer's story: an approved batch is paid, each person exactly once; failures carry their
reason; a receipt proves a payment in the signed ledger; a corrected destination is re-sent
under a new reference linked to the first. Then insufficient funds, lost answers, the controls
and their bad inputs.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Callable, Sequence
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from chopay.db import get_db, utcnow
from disbursement import execution
from disbursement.models import PayoutItem
from payments.ledger import merkle
from payments.ledger import services as ledger
from payments.rails.base import Outcome, TransferRequest, TransferResult
from payments.rails.errors import ResponseLost, TransientRailError
from tests.chopay.helpers import assert_problem
from tests.disbursement.test_batches import PERIOD, row, upload_json

CLOSED, FROZEN, NOT_FOUND = "9000099991", "9000099993", "9000099994"
BAD = {10: (CLOSED, "account_closed"), 11: (FROZEN, "account_frozen"), 12: (NOT_FOUND, "account_not_found")}


def _rows(people: list[dict[str, Any]], count: int = 16) -> list[dict[str, Any]]:
    out = []
    for p in people[:count]:
        serial = int(p["full_name"][-4:])
        if serial in BAD:
            out.append(row(p, bin=p["bin"], account_number=BAD[serial][0]))
        else:
            out.append(row(p))
    return out


def _approved(
    client: FlaskClient,
    officer: dict[str, str],
    approver: dict[str, str],
    run_jobs: Callable[[], int],
    rows: list[dict[str, Any]],
) -> int:
    resp = upload_json(client, officer, rows)
    assert resp.status_code == 202, resp.get_json()
    run_jobs()
    batch = client.get(resp.headers["Location"], headers=officer).get_json()
    assert batch["status"] == "ready", batch
    approved = client.post(
        f"/v1/batches/{batch['id']}/approve", json={"exclude_invalid": False}, headers=approver
    )
    assert approved.status_code == 200, approved.get_json()
    return int(batch["id"])


def _items(app: Flask, batch_id: int) -> list[PayoutItem]:
    with get_db(app).read_session() as s:
        return list(
            s.scalars(sa.select(PayoutItem).where(PayoutItem.batch_id == batch_id).order_by(PayoutItem.id))
        )


def _moved(bank_client: httpx.Client, reference: str) -> int:
    return int(bank_client.get("/admin/transfers", params={"reference": reference}).json()["count"])


def _balances(app: Flask) -> tuple[int, int]:
    with get_db(app).read_session() as s:
        return ledger.balance(s, "program:TCXH:benefits"), ledger.balance(s, "program:TCXH:budget")


@pytest.fixture
def paying(app: Flask, program: dict[str, Any]) -> Flask:
    """The app, with a funded program and the simulator as its rail."""
    return app


def test_an_approved_batch_is_paid_once_each_with_receipts_and_a_sealed_checkpoint(
    client: FlaskClient,
    paying: Flask,
    people: list[dict[str, Any]],
    officer: dict[str, str],
    approver: dict[str, str],
    admin: dict[str, str],
    run_jobs: Callable[[], int],
    bank_client: httpx.Client,
):
    rows = _rows(people)
    batch_id = _approved(client, officer, approver, run_jobs, rows)
    run_jobs()

    batch = client.get(f"/v1/batches/{batch_id}", headers=officer).get_json()
    assert batch["status"] == "completed_with_failures"
    execution_report = batch["report"]["execution"]
    assert execution_report["done"] == len(rows)
    assert execution_report["remaining"] == 0
    assert {r["code"]: r["count"] for r in execution_report["by_reason"]} == {
        code: 1 for _, code in BAD.values()
    }
    assert execution_report["tree_size"] >= len(rows) - len(BAD)
    assert execution_report["items_per_second"] > 0

    items = _items(paying, batch_id)
    paid = [i for i in items if i.status == "paid"]
    failed = {i.reason_code: i for i in items if i.status == "failed"}
    assert len(paid) == len(rows) - len(BAD)
    assert set(failed) == {code for _, code in BAD.values()}
    assert all(
        i.rail_code in {"ACCOUNT_CLOSED", "ACCOUNT_FROZEN", "ACCOUNT_NOT_FOUND"} for i in failed.values()
    )
    assert not any(i.entitled for i in failed.values())
    for item in items:
        assert _moved(bank_client, item.reference) == (1 if item.status == "paid" else 0)
        assert item.attempts == 1
    assert all(i.bank_txn_id and i.receipt_code and i.ledger_transaction_id for i in paid)
    benefits, _ = _balances(paying)
    assert benefits == sum(i.amount for i in paid)
    summary = bank_client.get("/admin/transfers").json()
    assert summary["paid_amount"] == benefits
    assert summary["references_paid_more_than_once"] == []

    # The report lists every item, its bank transaction id, reason, attempts and receipt.
    resp = client.get(f"/v1/batches/{batch_id}/report.csv", headers=officer)
    assert resp.status_code == 200
    assert resp.mimetype == "text/csv"
    lines = list(csv.DictReader(io.StringIO(resp.get_data(as_text=True))))
    assert len(lines) == len(items)
    by_ref = {line["reference"]: line for line in lines}
    for item in items:
        line = by_ref[item.reference]
        assert (line["status"], line["bank_txn_id"], line["reason_code"], line["receipt_code"]) == (
            item.status,
            item.bank_txn_id or "",
            item.reason_code or "",
            item.receipt_code or "",
        )
        assert line["attempts"] == "1"
        assert "*" in line["account_number"]

    # A receipt, without an account, proves the payment in the latest signed checkpoint.
    item = paid[0]
    code = item.receipt_code
    assert code is not None
    shown = client.get(f"/v1/receipts/{code[:4]}-{code[4:8]}-{code[8:].lower()}")
    assert shown.status_code == 200, shown.get_json()
    receipt = shown.get_json()
    assert receipt["amount"] == item.amount
    assert receipt["bank_txn_id"] == item.bank_txn_id
    assert receipt["program"]["code"] == "TCXH"
    assert receipt["period"] == PERIOD
    assert receipt["sealed"] is True
    proof = receipt["ledger"]["proof"]
    assert proof["leaf"]["metadata"]["payout_ref"] == item.reference
    assert proof["leaf"]["metadata"]["receipt"] == code
    assert merkle.verify_inclusion(
        proof["index"],
        proof["tree_size"],
        bytes.fromhex(proof["leaf_hash"]),
        [bytes.fromhex(h) for h in proof["proof"]],
        bytes.fromhex(proof["root"]),
    )
    assert receipt["checkpoint"]["size"] == proof["tree_size"]
    text = shown.get_data(as_text=True)
    assert people[0]["national_id"] not in text
    assert "Nguyễn" not in text
    assert people[0]["phone"] not in text

    # Nothing to re-send until a destination is corrected; then only that one, linked to the first.
    nothing = client.post(f"/v1/batches/{batch_id}/retry-failed", headers=officer)
    assert_problem(nothing, 409, "nothing_to_retry")
    closed = failed["account_closed"]
    fix = client.patch(
        f"/v1/beneficiaries/{closed.beneficiary_id}", json={"account_number": "9123456780"}, headers=officer
    )
    assert fix.status_code == 200, fix.get_json()
    retried = client.post(f"/v1/batches/{batch_id}/retry-failed", headers=officer)
    assert retried.status_code == 202, retried.get_json()
    assert retried.get_json()["retried"] == 1
    assert retried.get_json()["batch"]["status"] == "running"
    run_jobs()
    again = [i for i in _items(paying, batch_id) if i.retry_of_id == closed.id]
    assert len(again) == 1
    assert again[0].status == "paid"
    assert again[0].reference != closed.reference
    assert _moved(bank_client, again[0].reference) == 1
    assert (
        client.get(f"/v1/batches/{batch_id}", headers=officer).get_json()["status"]
        == "completed_with_failures"
    )
    with get_db(paying).read_session() as s:
        leaf = ledger.get_transaction(s, again[0].ledger_transaction_id)
    assert leaf.metadata["retry_of"] == closed.reference


@pytest.mark.parametrize("bank_options", [{"source_balance": 2_000_000}])
def test_insufficient_funds_pauses_the_batch_and_fails_nobody_until_funded(
    client: FlaskClient,
    paying: Flask,
    people: list[dict[str, Any]],
    officer: dict[str, str],
    approver: dict[str, str],
    run_jobs: Callable[[], int],
    bank_client: httpx.Client,
):
    rows = [row(p) for p in people[:9]]  # 4.5 million dong, from a source holding 2 million
    batch_id = _approved(client, officer, approver, run_jobs, rows)
    run_jobs()
    batch = client.get(f"/v1/batches/{batch_id}", headers=officer).get_json()
    assert batch["status"] == "paused"
    alert = batch["report"]["execution"]["alert"]
    assert alert["code"] == "insufficient_funds"
    assert "fund" in alert["message"]
    statuses = [i.status for i in _items(paying, batch_id)]
    assert "failed" not in statuses
    assert "pending" in statuses
    assert bank_client.get("/admin/transfers").json()["payouts"] == statuses.count("paid") <= 4

    assert bank_client.post("/admin/fund", json={"amount": 10_000_000}).status_code == 200
    resumed = client.post(f"/v1/batches/{batch_id}/resume", headers=officer)
    assert resumed.status_code == 200
    assert resumed.get_json()["status"] == "running"
    run_jobs()
    batch = client.get(f"/v1/batches/{batch_id}", headers=officer).get_json()
    assert batch["status"] == "completed"
    assert batch["report"]["execution"]["alert"] is None
    assert all(_moved(bank_client, i.reference) == 1 for i in _items(paying, batch_id))


def _withdraw(app: Flask, amount: int) -> None:
    """Take ``amount`` out of the TCXH budget after approval (a funding reversed, say)."""
    from payments.ledger.domain import Posting, TransactionSpec

    with get_db(app).unit_of_work() as s:
        ledger.post(
            s,
            TransactionSpec(
                idempotency_key=f"withdraw:{amount}:{ledger.balance(s, 'program:TCXH:budget')}",
                kind="funding",
                memo="Funding reversed",
                postings=[Posting("program:TCXH:funding", amount), Posting("program:TCXH:budget", -amount)],
            ),
        )


def test_a_budget_shrunk_after_approval_pays_what_it_covers_and_pauses(
    client: FlaskClient,
    paying: Flask,
    people: list[dict[str, Any]],
    officer: dict[str, str],
    admin: dict[str, str],
    approver: dict[str, str],
    run_jobs: Callable[[], int],
    bank_client: httpx.Client,
):
    rows = [row(p) for p in people[:9]]  # 9 x 500,000 dong
    batch_id = _approved(client, officer, approver, run_jobs, rows)
    _withdraw(paying, 10_000_000_000 - 2_200_000)  # the budget now covers four of them
    run_jobs()
    batch = client.get(f"/v1/batches/{batch_id}", headers=officer).get_json()
    assert batch["status"] == "paused"
    alert = batch["report"]["execution"]["alert"]
    assert alert["code"] == "budget_insufficient"
    assert "TCXH" in alert["message"]
    assert "Fund the program" in alert["message"]
    statuses = [i.status for i in _items(paying, batch_id)]
    assert statuses == ["paid"] * 4 + ["pending"] * 5  # nobody failed, nothing sent beyond the budget
    assert bank_client.get("/admin/transfers").json()["payouts"] == 4
    assert _balances(paying) == (2_000_000, 200_000)

    funded = client.post(
        "/v1/programs/TCXH/funding", json={"amount": 5_000_000, "reference": "QD-2026-12"}, headers=admin
    )
    assert funded.status_code == 201, funded.get_json()
    assert client.post(f"/v1/batches/{batch_id}/resume", headers=officer).status_code == 200
    run_jobs()
    batch = client.get(f"/v1/batches/{batch_id}", headers=officer).get_json()
    assert batch["status"] == "completed"
    assert all(_moved(bank_client, i.reference) == 1 for i in _items(paying, batch_id))
    assert _balances(paying) == (4_500_000, 2_700_000)


class Withdrawing:
    """A rail that empties the program's budget while its first chunk is in flight."""

    def __init__(self, rail: Any, app: Flask) -> None:
        self.rail, self.app, self.done = rail, app, False
        self.name, self.max_chunk = rail.name, rail.max_chunk

    def send(self, requests: Sequence[TransferRequest], chunk_reference: str | None = None) -> Any:
        if not self.done:
            self.done = True
            with get_db(self.app).read_session() as s:
                left = ledger.balance(s, "program:TCXH:budget")
            _withdraw(self.app, left)
        return self.rail.send(requests, chunk_reference=chunk_reference)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.rail, name)


def test_payments_the_ledger_refuses_are_held_then_posted_once_funded(
    client: FlaskClient,
    paying: Flask,
    app: Flask,
    people: list[dict[str, Any]],
    officer: dict[str, str],
    admin: dict[str, str],
    approver: dict[str, str],
    run_jobs: Callable[[], int],
    bank_client: httpx.Client,
):
    """The rail paid, then the posting is refused: the items are held, never failed nor re-sent."""
    from disbursement.services import payouts

    app.extensions[execution.RAIL_EXTENSION] = Withdrawing(execution.rail(app), app)
    batch_id = _approved(client, officer, approver, run_jobs, [row(p) for p in people[:3]])
    run_jobs()
    batch = client.get(f"/v1/batches/{batch_id}", headers=officer).get_json()
    assert batch["status"] == "paused"
    alert = batch["report"]["execution"]["alert"]
    assert alert["code"] == "budget_insufficient"
    assert "3 transfers (1,500,000 dong)" in alert["message"]
    items = _items(paying, batch_id)
    assert {i.status for i in items} == {"sending"}
    assert all(i.ledger_transaction_id is None and i.receipt_code is None for i in items)
    assert all(i.lease_until is not None for i in items)
    assert all(_moved(bank_client, i.reference) == 1 for i in items)  # the bank did pay them
    assert _balances(paying) == (0, 0)

    run_jobs()  # still held: nothing is asked again before the hold ends, nothing re-sent
    assert {i.status for i in _items(paying, batch_id)} == {"sending"}

    funded = client.post(
        "/v1/programs/TCXH/funding", json={"amount": 2_000_000, "reference": "QD-2026-12"}, headers=admin
    )
    assert funded.status_code == 201, funded.get_json()
    with get_db(paying).unit_of_work() as s:  # the hold ends
        s.execute(
            sa.update(PayoutItem)
            .where(PayoutItem.batch_id == batch_id)
            .values(lease_until=utcnow() - dt.timedelta(seconds=payouts.REFUSED_HOLD))
        )
    assert client.post(f"/v1/batches/{batch_id}/resume", headers=officer).status_code == 200
    run_jobs()
    batch = client.get(f"/v1/batches/{batch_id}", headers=officer).get_json()
    assert batch["status"] == "completed", batch
    items = _items(paying, batch_id)
    assert {i.status for i in items} == {"paid"}
    assert all(_moved(bank_client, i.reference) == 1 for i in items)
    assert _balances(paying) == (1_500_000, 500_000)


class Flaky:
    """A rail that loses the first answers it gets and fails the next calls before sending."""

    def __init__(self, rail: Any, lose: int, refuse: int) -> None:
        self.rail = rail
        self.name, self.max_chunk, self.supports_lookup = rail.name, 3, rail.supports_lookup
        self.lose, self.refuse = lose, refuse
        self.sent: list[str] = []

    def send(self, chunk: Sequence[TransferRequest], *, chunk_reference: str) -> list[TransferResult]:
        if self.refuse:
            self.refuse -= 1
            raise TransientRailError("502 from the gateway", code="server_error", raw_code="502")
        results = self.rail.send(chunk, chunk_reference=chunk_reference)
        self.sent += [t.reference for t in chunk]
        if self.lose:
            self.lose -= 1
            raise ResponseLost("the connection broke before the answer")
        return list(results)

    def status(self, reference: str, *, chunk_reference: str | None = None) -> TransferResult | None:
        return self.rail.status(reference, chunk_reference=chunk_reference)  # type: ignore[no-any-return]

    def balance(self) -> Any:
        return self.rail.balance()

    def lookup(self, bin: str, account_number: str) -> Any:
        return self.rail.lookup(bin, account_number)


def test_lost_answers_and_gateway_errors_resolve_by_status_and_pay_each_once(
    paying: Flask,
    people: list[dict[str, Any]],
    officer: dict[str, str],
    approver: dict[str, str],
    run_jobs: Callable[[], int],
    bank_client: httpx.Client,
    app: Flask,
    client: FlaskClient,
):
    rows = [row(p) for p in people[:9]]
    rail = execution.rail(app)
    flaky = Flaky(rail, lose=2, refuse=2)
    app.extensions[execution.RAIL_EXTENSION] = flaky
    app.config["CHOPAY"] = __import__("dataclasses").replace(
        app.config["CHOPAY"], payout_backoff=0.01, payout_lease=0.05, payout_chunk=3
    )
    batch_id = _approved(client, officer, approver, run_jobs, rows)
    for _ in range(50):
        run_jobs()
        with app.app_context():
            execution.resume_payouts()
        if client.get(f"/v1/batches/{batch_id}", headers=officer).get_json()["status"] == "completed":
            break
    items = _items(app, batch_id)
    assert {i.status for i in items} == {"paid"}
    assert all(_moved(bank_client, i.reference) == 1 for i in items)
    assert sum(i.attempts for i in items) > len(items)  # the refused chunks were sent again
    benefits, _ = _balances(app)
    assert benefits == bank_client.get("/admin/transfers").json()["paid_amount"] == 9 * 500_000


def test_controls_refuse_what_the_batch_state_does_not_allow(
    client: FlaskClient,
    paying: Flask,
    people: list[dict[str, Any]],
    officer: dict[str, str],
    approver: dict[str, str],
    user: Callable[[str], tuple[int, dict[str, str]]],
    run_jobs: Callable[[], int],
):
    auditor = user("auditor")[1]
    resp = upload_json(client, officer, [row(p) for p in people[:3]])
    run_jobs()
    ready = resp.get_json()["id"]
    for action in ("pause", "resume", "retry-failed"):
        assert_problem(
            client.post(f"/v1/batches/{ready}/{action}", headers=officer), 409, "batch_state_invalid"
        )
    assert_problem(
        client.post(f"/v1/batches/{ready}/cancel", json={"reason": "x"}, headers=officer),
        409,
        "batch_state_invalid",
    )
    assert_problem(
        client.post(f"/v1/batches/{ready}/cancel", json={}, headers=officer), 422, "validation_failed"
    )
    assert_problem(client.post("/v1/batches/999999/pause", headers=officer), 404, "batch_not_found")
    assert client.post(f"/v1/batches/{ready}/pause", headers=auditor).status_code == 403
    assert client.get("/v1/receipts/ABCD-EFGH-JKL0").status_code == 404  # not a code: no such page
    assert_problem(client.get("/v1/receipts/ABCD-EFGH-JKLM"), 404, "receipt_not_found")
    with get_db(paying).read_session() as s:
        assert {i.status for i in s.scalars(sa.select(PayoutItem).where(PayoutItem.batch_id == ready))} == {
            "pending"
        }


def test_a_cancelled_batch_sends_nothing_more(
    client: FlaskClient,
    paying: Flask,
    people: list[dict[str, Any]],
    officer: dict[str, str],
    approver: dict[str, str],
    run_jobs: Callable[[], int],
    bank_client: httpx.Client,
):
    batch_id = _approved(client, officer, approver, run_jobs, [row(p) for p in people[:5]])
    cancelled = client.post(
        f"/v1/batches/{batch_id}/cancel", json={"reason": "Sai kỳ chi trả"}, headers=officer
    )
    assert cancelled.status_code == 200
    assert cancelled.get_json()["status"] == "cancelled"
    run_jobs()
    assert {i.status for i in _items(paying, batch_id)} == {"cancelled"}
    assert bank_client.get("/admin/transfers").json()["payouts"] == 0
    assert _balances(paying)[0] == 0


def test_pause_stops_new_sends_and_resume_finishes(
    client: FlaskClient,
    paying: Flask,
    people: list[dict[str, Any]],
    officer: dict[str, str],
    approver: dict[str, str],
    run_jobs: Callable[[], int],
    bank_client: httpx.Client,
):
    batch_id = _approved(client, officer, approver, run_jobs, [row(p) for p in people[:5]])
    with paying.app_context():
        execution.start_batch(batch_id)  # running, its chunks queued
    paused = client.post(f"/v1/batches/{batch_id}/pause", headers=officer)
    assert paused.status_code == 200
    assert paused.get_json()["status"] == "paused"
    run_jobs()
    assert {i.status for i in _items(paying, batch_id)} == {"pending"}
    assert client.post(f"/v1/batches/{batch_id}/resume", headers=officer).status_code == 200
    run_jobs()
    assert client.get(f"/v1/batches/{batch_id}", headers=officer).get_json()["status"] == "completed"
    assert all(_moved(bank_client, i.reference) == 1 for i in _items(paying, batch_id))


def test_precheck_flags_dead_accounts_and_name_mismatches_before_approval(
    client: FlaskClient,
    paying: Flask,
    people: list[dict[str, Any]],
    officer: dict[str, str],
    run_jobs: Callable[[], int],
    bank_client: httpx.Client,
):
    rows = _rows(people, 13)
    rows[12] = row(people[12], bin=people[12]["bin"], account_number="9000099995")
    for p in people[:9]:  # the bank writes names in capitals without diacritics
        name = p["full_name"].upper().replace("Ễ", "E").replace("Ă", "A")
        put = bank_client.put(f"/admin/accounts/{p['bin']}/{p['account_number']}", json={"holder_name": name})
        assert put.status_code == 200, put.text
    resp = upload_json(client, officer, rows)
    run_jobs()
    batch_id = resp.get_json()["id"]
    asked = client.post(f"/v1/batches/{batch_id}/precheck", headers=officer)
    assert asked.status_code == 202
    assert asked.get_json()["precheck"]["status"] == "queued"
    run_jobs()
    shown = client.get(f"/v1/batches/{batch_id}", headers=officer).get_json()["precheck"]
    assert shown["status"] == "finished"
    assert shown["checked"] == shown["total"] == 13
    assert shown["codes"] == {
        "ok": 9,
        "account_closed": 1,
        "account_frozen": 1,
        "account_not_found": 1,
        "name_mismatch": 1,
    }
    items = client.get(f"/v1/batches/{batch_id}/items?limit=50", headers=officer).get_json()["items"]
    assert {i["row"]: i["precheck_code"] for i in items}[13] == "name_mismatch"

    class NoLookup(Flaky):
        pass

    blind = NoLookup(execution.rail(paying), 0, 0)
    blind.supports_lookup = False
    paying.extensions[execution.RAIL_EXTENSION] = blind
    refused = client.post(f"/v1/batches/{batch_id}/precheck", headers=officer)
    assert_problem(refused, 409, "precheck_unsupported")
    assert "cannot pre-check" in refused.get_json()["detail"]


def test_chunks_cover_the_unfinished_items_in_runs_of_the_chunk_size(
    client: FlaskClient,
    paying: Flask,
    people: list[dict[str, Any]],
    officer: dict[str, str],
    approver: dict[str, str],
    run_jobs: Callable[[], int],
):
    from disbursement.services import payouts

    batch_id = _approved(client, officer, approver, run_jobs, [row(p) for p in people[:9]])
    ids = [i.id for i in _items(paying, batch_id)]
    with get_db(paying).read_session() as s:
        parts = payouts.ranges(s, batch_id, 4)
        assert payouts.ranges(s, batch_id, 4, expired_only=True) == []
    assert parts == [(ids[0], ids[3]), (ids[4], ids[7]), (ids[8], ids[8])]


def test_receipts_are_rate_limited_per_client(make_app: Callable[..., Flask], settings: Any):
    limited = make_app(public_rate_limit="2/minute").test_client()
    answers = [limited.get("/v1/receipts/ABCD-EFGH-JKLM").status_code for _ in range(3)]
    assert answers == [404, 404, 429]
    assert_problem(limited.get("/v1/receipts/ABCD-EFGH-JKLM"), 429, "too_many_requests")


def test_an_outcome_recorded_by_one_worker_is_skipped_by_another(
    client: FlaskClient,
    paying: Flask,
    people: list[dict[str, Any]],
    officer: dict[str, str],
    approver: dict[str, str],
    run_jobs: Callable[[], int],
):
    """Two workers holding the same answer (a lease that expired mid-call): one write, one posting."""
    from disbursement.services import payouts

    batch_id = _approved(client, officer, approver, run_jobs, [row(p) for p in people[:3]])
    database = get_db(paying)
    with database.unit_of_work() as s:
        payouts.start(s, batch_id)
        state = payouts.batch_state(s, batch_id)
        claimed = payouts.claim(s, batch_id, 0, 10**9, lease=60, limit=10)
    assert state is not None
    assert [c.attempts for c in claimed] == [1, 1, 1]
    answers = [(c, TransferResult(c.reference, Outcome.SUCCEEDED, bank_txn_id=f"FT{c.id}")) for c in claimed]
    with database.unit_of_work() as s:
        first = payouts.record(s, state, answers, backoff=1.0)
    with database.unit_of_work() as s:
        second = payouts.record(s, state, answers, backoff=1.0)
    assert (first.paid, first.skipped, second.paid, second.skipped) == (3, 0, 0, 3)
    assert _balances(paying)[0] == 3 * 500_000
    with database.unit_of_work() as s:  # nothing is claimable any more: all are final
        assert payouts.claim(s, batch_id, 0, 10**9, lease=60, limit=10) == []


def _most_in_flight(app: Flask, rail_name: str, limit: int, callers: int = 6) -> int:
    import dataclasses
    import threading
    import time

    settings = dataclasses.replace(app.config["CHOPAY"], payout_concurrency=limit, payout_lease=5.0)
    lock = threading.Lock()
    active, most = [0], [0]

    def work() -> None:
        with app.app_context(), execution.in_flight(settings, rail_name):
            with lock:
                active[0] += 1
                most[0] = max(most[0], active[0])
            time.sleep(0.05)
            with lock:
                active[0] -= 1

    threads = [threading.Thread(target=work) for _ in range(callers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return most[0]


def test_chunks_in_flight_per_rail_stay_within_the_limit_in_process(app: Flask):
    assert _most_in_flight(app, "limit-in-process", 2) == 2


def test_chunks_in_flight_per_rail_stay_within_the_limit_across_processes_on_redis(
    make_app: Callable[..., Flask], redis_url: str
):
    shared = make_app(redis_url=redis_url, inline_jobs=False)
    assert _most_in_flight(shared, "limit-redis", 3, callers=8) == 3

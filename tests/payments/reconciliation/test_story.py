"""The auditor's story against real simulator transfers: fund, pay a batch through faults, a transfer
comes back, export the statement, reconcile, reverse the return, reconcile again.

The payout batch is sent through chopay's payOS rail to the bank simulator; each paid item is
posted to the ledger exactly as payout execution posts it (kind ``payout``, debit
``program:{CODE}:benefits``, credit ``program:{CODE}:budget``, metadata ``payout_ref``,
``bank_txn_id`` = the simulator's transfer id, ``batch``, ``program``, ``period``), so the real
batch job can take the place of :func:`_pay_batch` without changing the rest.
"""

from __future__ import annotations

import datetime as dt

import httpx
import pytest

from payments.rails.base import Outcome, TransferRequest
from payments.rails.errors import RailError
from payments.rails.fakebank import config as fbcfg
from payments.rails.fakebank.statements import VIETNAM
from payments.rails.payos import PayosRail
from tests.payments.rails.conftest import make_bank
from tests.payments.reconciliation.conftest import Book, run_jobs, upload

SOURCE = f"/admin/statements/{fbcfg.SOURCE_BIN}/{fbcfg.SOURCE_NUMBER}"
BATCH = "TCXH2612C001"


def _pay_batch(rail: PayosRail, chunk: list[TransferRequest]) -> dict[str, object]:
    """Send a chunk until the rail decides every item (transient faults are retried, idempotently)."""
    for _attempt in range(50):
        try:
            results = rail.send(chunk, chunk_reference=BATCH)
        except RailError as exc:
            if exc.outcome not in (Outcome.TRANSIENT, Outcome.PENDING):
                raise
            continue
        decided = {}
        for r in results:
            while not r.final:
                found = rail.status(r.reference, chunk_reference=BATCH)
                assert found is not None
                r = found
            decided[r.reference] = r
        return decided
    raise AssertionError("the simulator never answered")


@pytest.fixture
def simulator(tmp_path):
    bank = make_bank(tmp_path, source_balance=0, error_rate=0.4, seed=11)
    with httpx.Client(transport=httpx.WSGITransport(app=bank), base_url="http://fakebank") as http:
        rail = PayosRail(
            base_url="http://fakebank",
            client_id=fbcfg.DEMO_CLIENT_ID,
            api_key=fbcfg.DEMO_API_KEY,
            checksum_key=fbcfg.DEMO_CHECKSUM_KEY,
            http_client=http,
        )
        yield http, rail
    bank.extensions["fakebank"].engine.dispose()


@pytest.mark.parametrize("fmt", ["csv", "camt053", "mt940"])
def test_a_payout_batch_reconciles_with_one_return_reversed(app, client, auditor, book: Book, simulator, fmt):
    http, rail = simulator
    today = dt.datetime.now(VIETNAM).date()
    funded = http.post("/admin/fund", json={"amount": 5_000_000}).json()
    book.fund(
        "funding:TCXH:2026-12", 5_000_000, today, funding_ref="TCXH202612F", bank_txn_id=funded["transfer"]
    )

    chunk = [
        TransferRequest(f"TCXH2612A{n:03d}", 100_000 * n, "970436", f"0123400{n:03d}", "TCXH 2026-12")
        for n in range(1, 6)
    ]
    chunk[2] = TransferRequest("TCXH2612A003", 300_000, "970436", "0123499991", "TCXH 2026-12")  # closed
    results = _pay_batch(rail, chunk)
    assert results["TCXH2612A003"].outcome == Outcome.FAILED
    paid = [r for r in results.values() if r.outcome == Outcome.SUCCEEDED]
    assert len(paid) == 4
    for r in paid:
        amount = next(t.amount for t in chunk if t.reference == r.reference)
        book.payout(
            r.reference,
            amount,
            today,
            bank_txn_id=r.bank_txn_id,
            batch=BATCH,
            program="TCXH",
            period="2026-12",
        )
    returned = http.post("/admin/payouts/TCXH2612A004/return", json={"reason": "account closed"}).json()
    assert returned["state"] == "REVERSED"
    book.seal()

    exported = http.get(SOURCE, params={"format": fmt, "from": today.isoformat(), "to": today.isoformat()})
    assert exported.status_code == 200
    fields = {"format": fmt} | ({"from": today.isoformat(), "to": today.isoformat()} if fmt == "csv" else {})
    first = upload(client, auditor, exported.content, **fields)
    assert first.status_code == 202, first.json
    run_jobs(app)
    rec = client.get(f"/v1/reconciliations/{first.json['id']}", headers=auditor).json
    assert rec["status"] == "done"
    assert {c: t["count"] for c, t in rec["totals"].items() if t["count"]} == {"matched": 5, "returned": 1}
    assert rec["balance"]["difference"] == 400_000  # the money back that the ledger does not show yet
    assert rec["balance"]["unexplained"] == 0
    assert rec["balance"]["fully_explained"] is True

    items = client.get(f"/v1/reconciliations/{first.json['id']}/items", headers=auditor).json["items"]
    (back,) = [i for i in items if i["category"] == "returned"]
    assert back["line"]["line_id"] == returned["returnTransaction"]
    reversed_ = client.post(
        f"/v1/reconciliations/{first.json['id']}/items/{back['position']}/reverse",
        headers=auditor,
        json={"reason": "returned by the beneficiary bank: account closed"},
    )
    assert reversed_.status_code == 201, reversed_.json
    assert reversed_.json["reversal"]["metadata"]["payout_ref"] == "TCXH2612A004"
    book.seal()

    # The next reconciliation (the statement from yesterday on) shows the return as matched.
    yesterday = (today - dt.timedelta(days=1)).isoformat()
    again = http.get(SOURCE, params={"format": fmt, "from": yesterday, "to": today.isoformat()})
    fields = {"format": fmt} | ({"from": yesterday, "to": today.isoformat()} if fmt == "csv" else {})
    second = upload(client, auditor, again.content, **fields)
    assert second.status_code == 202, second.json
    run_jobs(app)
    rec = client.get(f"/v1/reconciliations/{second.json['id']}", headers=auditor).json
    assert {c: t["count"] for c, t in rec["totals"].items() if t["count"]} == {"matched": 6}
    assert rec["balance"]["difference"] == 0
    assert rec["balance"]["fully_explained"] is True
    book.seal()
    check = client.get(f"/v1/reconciliations/{second.json['id']}/verification", headers=auditor).json
    assert check["ok"] is True, check["problems"]

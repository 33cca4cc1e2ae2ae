"""Reports pinned and sealed, tampering detected, decisions, the reverse action, roles, the rq job."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import signal

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st

from chopay import create_app, jobs
from chopay.db import get_db
from payments.ledger import audit, entries, keys
from payments.ledger import services as ledger
from payments.ledger.canonical import canonical_json
from payments.ledger.verify import main as verify_main
from payments.reconciliation.models import Item, Total
from payments.reconciliation.report import ReportItem, item_line
from tests.chopay.helpers import assert_problem
from tests.conftest import make_settings
from tests.payments.reconciliation.conftest import BUDGET, run_jobs, upload
from tests.payments.reconciliation.planted import OPENING, PERIOD, PLANTED, post_ledger, statement
from tests.payments.reconciliation.writers import camt053

POS = {x.line_id: i for i, (x, _, _) in enumerate(PLANTED)}


def _reconciled(app, client, headers, book, fmt="csv"):
    txs = post_ledger(book)
    data, fields = statement(fmt)
    rid = upload(client, headers, data, **fields).json["id"]
    run_jobs(app)
    return rid, txs


def _seal(app):
    from payments.ledger import jobs as ledger_jobs

    ledger_jobs.seal(get_db(app), app.config["CHOPAY"], force=True)


def test_report_is_pinned_and_its_seal_verifies(app, client, auditor, book, tmp_path):
    rid, txs = _reconciled(app, client, auditor, book)
    rec = client.get(f"/v1/reconciliations/{rid}", headers=auditor).json
    # A payout committed after the pin is not part of this report.
    book.payout("P0777", 1_000, PERIOD[0] + dt.timedelta(days=5))
    _seal(app)
    with app.app_context(), get_db(app).read_session() as s:
        sealed = ledger.get_transaction(s, rec["seal"]["attestation"])
        assert sealed.kind == "attestation"
        assert sealed.postings == ()
        assert sealed.metadata == {
            "reconciliation": rec["public_id"],
            "report_digest": rec["seal"]["report_digest"],
            "checkpoint_size": rec["checkpoint"]["size"],
        }
        assert sealed.log_index >= rec["checkpoint"]["size"]
    check = client.get(f"/v1/reconciliations/{rid}/verification", headers=auditor).json
    assert check["ok"] is True, check["problems"]
    assert check["recomputed_digest"] == rec["seal"]["report_digest"]
    assert check["attestation"]["leaf"]["metadata"]["report_digest"] == rec["seal"]["report_digest"]
    assert check["pinned_checkpoint"]["size"] == rec["checkpoint"]["size"]

    canonical = client.get(f"/v1/reconciliations/{rid}/report.jsonl", headers=auditor)
    import hashlib

    assert hashlib.sha256(canonical.get_data()).hexdigest() == rec["seal"]["report_digest"]

    # The ledger, attestation leaves included, still verifies: as an export and in the database.
    with app.app_context(), get_db(app).read_session() as s:
        export = tmp_path / "ledger.jsonl"
        export.write_text("".join(entries.export_lines(s)))
        verifiers = keys.trusted_verifiers(app.config["CHOPAY"])
        assert audit.verify_database(s, verifiers).ok
    assert verify_main([str(export), "--key", verifiers[0].vkey]) == 0


@pytest.mark.parametrize("tamper", ["item_amount", "item_category", "total", "checkpoint"])
def test_tampering_with_a_stored_report_is_detected(app, client, auditor, book, tamper):
    rid, _ = _reconciled(app, client, auditor, book)
    _seal(app)
    with get_db(app).unit_of_work() as s:
        if tamper == "item_amount":
            s.execute(
                sa.update(Item).where(Item.reconciliation_id == rid, Item.position == 0).values(amount=-1)
            )
        elif tamper == "item_category":
            s.execute(
                sa.update(Item)
                .where(Item.reconciliation_id == rid, Item.category == "missing_in_ledger")
                .values(category="matched")
            )
        elif tamper == "total":
            s.execute(sa.update(Total).where(Total.reconciliation_id == rid).values(difference=0))
        else:
            from payments.reconciliation.models import Reconciliation

            s.execute(sa.update(Reconciliation).where(Reconciliation.id == rid).values(checkpoint_size=1))
    check = client.get(f"/v1/reconciliations/{rid}/verification", headers=auditor).json
    assert check["ok"] is False
    assert any("changed after it was sealed" in p for p in check["problems"]), check["problems"]


def test_confirm_and_reject_suggestions_once(app, client, auditor, admin, book):
    rid, _ = _reconciled(app, client, auditor, book)
    url = f"/v1/reconciliations/{rid}/items"
    confirmed = client.post(f"{url}/{POS['FB0008']}/confirm", headers=auditor, json={"note": "same payer"})
    assert confirmed.status_code == 200, confirmed.json
    assert confirmed.json["decision"]["action"] == "confirmed"
    assert confirmed.json["decision"]["note"] == "same payer"
    assert_problem(client.post(f"{url}/{POS['FB0008']}/reject", headers=admin), 409, "item_decided")
    assert_problem(client.post(f"{url}/{POS['FB0001']}/confirm", headers=auditor), 409, "item_not_suggested")
    assert_problem(client.post(f"{url}/99/confirm", headers=auditor), 404, "item_not_found")
    assert_problem(
        client.post("/v1/reconciliations/999/items/0/confirm", headers=auditor),
        404,
        "reconciliation_not_found",
    )
    # Decisions come after the seal and do not touch it.
    _seal(app)
    assert client.get(f"/v1/reconciliations/{rid}/verification", headers=auditor).json["ok"] is True
    rows = (
        client.get(f"/v1/reconciliations/{rid}/report.csv", headers=auditor)
        .get_data(as_text=True)
        .splitlines()
    )
    assert rows[1 + POS["FB0008"]].endswith(",confirmed")


def test_reverse_a_return_end_to_end(app, client, auditor, book):
    rid, txs = _reconciled(app, client, auditor, book)
    url = f"/v1/reconciliations/{rid}/items/{POS['FB0005']}/reverse"
    assert_problem(
        client.post(
            f"/v1/reconciliations/{rid}/items/{POS['FB0001']}/reverse", headers=auditor, json={"reason": "x"}
        ),
        409,
        "item_not_returned",
    )
    assert_problem(client.post(url, headers=auditor, json={}), 422, "validation_failed")
    resp = client.post(
        url, headers={**auditor, "Idempotency-Key": "rev-1"}, json={"reason": "account closed"}
    )
    assert resp.status_code == 201, resp.json
    reversal = resp.json["reversal"]
    assert reversal["reverses"] == txs["P0001"]
    assert reversal["metadata"] == {"payout_ref": "P0001", "bank_txn_id": "FB0005", "reason_code": "returned"}
    assert reversal["occurred_at"].startswith("2026-11-02T17:00:00")  # the return's day began, Vietnam time
    assert {p["account"]: p["amount"] for p in reversal["postings"]}[BUDGET] == 150_000
    assert resp.json["item"]["decision"]["action"] == "reversed"
    assert resp.json["item"]["decision"]["reversal"] == reversal["id"]
    replay = client.post(
        url, headers={**auditor, "Idempotency-Key": "rev-1"}, json={"reason": "account closed"}
    )
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert_problem(client.post(url, headers=auditor, json={"reason": "again"}), 409, "item_decided")

    # The next statement of the account (one more day) shows the return matched to the reversal.
    lines = [x for x, _, _ in PLANTED]
    later = camt053(lines, OPENING, period=(PERIOD[0], PERIOD[1] + dt.timedelta(days=1)))
    nxt = upload(client, auditor, later, format="camt053")
    assert nxt.status_code == 202, nxt.json
    run_jobs(app)
    rec = client.get(f"/v1/reconciliations/{nxt.json['id']}", headers=auditor).json
    assert "returned" not in rec["totals"] or rec["totals"]["returned"]["count"] == 0
    item = client.get(
        f"/v1/reconciliations/{nxt.json['id']}/items", headers=auditor, query_string={"limit": 20}
    ).json["items"][POS["FB0005"]]
    assert item["category"] == "matched"
    assert item["rule"] == "bank_txn_id"
    assert item["transactions"] == [reversal["id"]]
    assert rec["balance"]["fully_explained"] is True


def test_a_partial_return_is_not_reversed(app, client, auditor, book):
    post_ledger(book)
    lines = [x for x, _, _ in PLANTED]
    lines[4] = dataclasses.replace(lines[4], amount=100_000)
    data = camt053(lines, OPENING, period=PERIOD)
    rid = upload(client, auditor, data, format="camt053").json["id"]
    run_jobs(app)
    resp = client.post(
        f"/v1/reconciliations/{rid}/items/{POS['FB0005']}/reverse", headers=auditor, json={"reason": "x"}
    )
    assert_problem(resp, 422, "return_not_reversible")


ENDPOINTS = [
    ("GET", "/v1/reconciliations", None),
    ("GET", "/v1/reconciliations/1", None),
    ("GET", "/v1/reconciliations/1/items", None),
    ("GET", "/v1/reconciliations/1/report.csv", None),
    ("GET", "/v1/reconciliations/1/report.jsonl", None),
    ("GET", "/v1/reconciliations/1/verification", None),
    ("POST", "/v1/reconciliations/1/items/0/confirm", {}),
    ("POST", "/v1/reconciliations/1/items/0/reject", {}),
    ("POST", "/v1/reconciliations/1/items/0/reverse", {"reason": "x"}),
]


@pytest.mark.parametrize("role", ["officer", "approver", "merchant", None])
def test_only_auditors_and_admins_reconcile(client, make_token, role):
    headers = (
        {}
        if role is None
        else {"Authorization": f"Bearer {make_token(role, merchant_id=7 if role == 'merchant' else None)}"}
    )
    status, code = (401, "token_missing") if role is None else (403, "role_forbidden")
    for method, path, body in ENDPOINTS:
        assert_problem(client.open(path, method=method, headers=headers, json=body), status, code)
    resp = upload(client, headers, b"line_id\n")
    assert_problem(resp, status, code)


@pytest.mark.parametrize("role", ["auditor", "admin"])
def test_auditors_and_admins_may(client, make_token, role, book):
    headers = {"Authorization": f"Bearer {make_token(role)}"}
    assert client.get("/v1/reconciliations", headers=headers).status_code == 200
    assert_problem(client.get("/v1/reconciliations/1", headers=headers), 404, "reconciliation_not_found")


def test_reading_a_report_before_it_is_written(client, auditor, book):
    post_ledger(book)
    data, fields = statement("csv")
    rid = upload(client, auditor, data, **fields).json["id"]
    assert client.get(f"/v1/reconciliations/{rid}/items", headers=auditor).json["items"] == []
    assert_problem(
        client.get(f"/v1/reconciliations/{rid}/report.csv", headers=auditor), 409, "report_not_ready"
    )
    assert_problem(
        client.get(f"/v1/reconciliations/{rid}/verification", headers=auditor), 409, "report_not_ready"
    )
    assert_problem(
        client.post(f"/v1/reconciliations/{rid}/items/0/confirm", headers=auditor), 409, "report_not_ready"
    )


def test_a_lost_signal_is_recovered_by_the_sweep(app, client, auditor, book):
    post_ledger(book)
    data, fields = statement("csv")
    with app.app_context():
        runner = jobs.runner(app)
        rid = upload(client, auditor, data, **fields).json["id"]
        runner._heaps["default"].queue.clear()  # the signal is lost
        runner._pending.clear()
        jobs.enqueue("payments.reconciliation.jobs.sweep")
    run_jobs(app)
    assert client.get(f"/v1/reconciliations/{rid}", headers=auditor).json["status"] == "done"


def test_the_run_is_an_rq_job(database_url, tmp_path, connection, redis_url, book):
    settings = dataclasses.replace(
        make_settings(database_url, tmp_path), redis_url=redis_url, inline_jobs=False, checkpoint_interval=0.0
    )
    app = create_app(settings)
    app.config["TESTING"] = True
    get_db(app).bind_to(connection)
    client = app.test_client()
    from chopay.users import create_user

    with get_db(app).unit_of_work() as s:
        token = create_user(s, name="Auditor Test", role="auditor").token
    headers = {"Authorization": f"Bearer {token}"}
    post_ledger(book)
    data, fields = statement("mt940")
    rid = upload(client, headers, data, **fields).json["id"]
    from rq import SimpleWorker

    runner = jobs.runner(app)
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with app.app_context():
            SimpleWorker([runner.queue("default")], connection=runner.connection).work(burst=True)
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
    assert client.get(f"/v1/reconciliations/{rid}", headers=headers).json["status"] == "done"
    get_db(app).engine.dispose()


_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=20).map(
    lambda s: __import__("unicodedata").normalize("NFC", s)
)
_day = st.dates(dt.date(2000, 1, 1), dt.date(2100, 1, 1))


@given(
    st.builds(
        ReportItem,
        position=st.integers(0, 10**7),
        category=st.sampled_from(["matched", "returned"]),
        rule=st.none() | st.sampled_from(["bank_txn_id", "tolerant"]),
        line_id=st.none()
        | st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=10),
        booking_date=_day,
        value_date=_day,
        amount=st.integers(-(10**13), 10**13),
        reference=_text,
        description=_text,
        source=_text,
        reversal=st.booleans(),
        transactions=st.lists(st.from_regex(r"TX-[0-9]{10}", fullmatch=True), max_size=3).map(tuple),
        ledger_amount=st.none() | st.integers(-(10**13), 10**13),
        ledger_date=st.none() | _day,
        ledger_reference=st.none() | _text,
        related=st.none() | st.just("TX-0000000001"),
        score=st.none() | st.integers(0, 100),
        difference=st.integers(-(10**13), 10**13),
    )
)
def test_the_fast_item_encoder_is_canonical_json(item):
    assert item_line(item).encode() == canonical_json(item.as_dict())


def test_stream_reads_back_what_was_written(app, client, auditor, book):
    rid, _ = _reconciled(app, client, auditor, book, fmt="camt053.001.08")
    body = client.get(f"/v1/reconciliations/{rid}/report.csv", headers=auditor).get_data(as_text=True)
    import csv

    rows = list(csv.DictReader(io.StringIO(body)))
    assert [r["line_id"] for r in rows[: len(PLANTED)]] == [x.line_id for x, _, _ in PLANTED]
    assert rows[5]["description"] == "Nguyen Van Test chuyen tien"

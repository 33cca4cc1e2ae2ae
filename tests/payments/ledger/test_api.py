"""The ledger over HTTP: auditors read and verify, admins post journal entries."""

from __future__ import annotations

import base64
import json

import pytest

from chopay.jobs import runner
from payments.ledger import merkle
from payments.ledger.note import Checkpoint, open_note
from payments.ledger.verify import verify_export

from .conftest import ENTRY


def post_and_seal(client, app, admin, n=3):
    ids = []
    for i in range(n):
        body = {**ENTRY, "memo": f"Opening balance {i}"}
        r = client.post(
            "/v1/ledger/transactions", headers={**admin, "Idempotency-Key": f"open-{i}"}, json=body
        )
        assert r.status_code == 201, r.json
        ids.append(r.json["id"])
    runner(app).run_pending()  # the sequencer job that posting enqueued
    return ids


def test_journal_entry_is_sequenced_and_sealed(opened, app, admin, auditor):
    ids = post_and_seal(opened, app, admin)
    tx = opened.get(f"/v1/ledger/transactions/{ids[0]}", headers=auditor).json
    assert tx["log_index"] == 0
    assert tx["postings"] == ENTRY["postings"]
    r = opened.get("/v1/ledger/checkpoint", headers=auditor)
    assert r.status_code == 200
    assert r.mimetype == "text/plain"
    keys = opened.get("/v1/ledger/verifier-key", headers=auditor).json["keys"]
    from payments.ledger.note import Verifier

    text, _ = open_note(r.get_data(as_text=True), [Verifier.from_vkey(k) for k in keys])
    assert Checkpoint.parse(text).size == 3


def test_inclusion_and_consistency_proofs_verify_against_the_signed_root(opened, app, admin, auditor):
    post_and_seal(opened, app, admin, 5)
    cps = opened.get("/v1/ledger/checkpoints", headers=auditor).json["items"]
    root = bytes.fromhex(cps[-1]["root"])
    assert base64.b64decode(cps[-1]["root_base64"]) == root
    for i in range(5):
        e = opened.get(f"/v1/ledger/entries/{i}", headers=auditor).json
        assert e["tree_size"] == 5
        assert merkle.verify_inclusion(
            i, 5, bytes.fromhex(e["leaf_hash"]), [bytes.fromhex(h) for h in e["proof"]], root
        )
    c = opened.get("/v1/ledger/consistency?first=2", headers=auditor).json
    assert merkle.verify_consistency(
        2, 5, bytes.fromhex(c["first_root"]), root, [bytes.fromhex(h) for h in c["proof"]]
    )
    assert opened.get("/v1/ledger/entries/5", headers=auditor).status_code == 404
    assert opened.get("/v1/ledger/consistency?first=0", headers=auditor).status_code == 422


def test_export_streams_a_verifiable_log(opened, app, admin, auditor):
    post_and_seal(opened, app, admin, 4)
    r = opened.get("/v1/ledger/export", headers=auditor)
    assert r.status_code == 200
    assert r.mimetype == "application/jsonl"
    lines = r.get_data(as_text=True).splitlines()
    assert [json.loads(line)["type"] for line in lines].count("entry") == 4
    keys = opened.get("/v1/ledger/verifier-key", headers=auditor).json["keys"]
    from payments.ledger.note import Verifier

    assert verify_export(lines, [Verifier.from_vkey(k) for k in keys]).ok


def test_entries_page_and_balances(opened, app, admin, auditor):
    post_and_seal(opened, app, admin, 3)
    page = opened.get("/v1/ledger/entries?limit=2", headers=auditor).json
    assert [e["index"] for e in page["items"]] == [0, 1]
    assert page["next_from_index"] == 2
    bal = opened.get("/v1/ledger/accounts/bank:settlement/balance", headers=auditor).json
    assert bal["balance"] == 15_000_000
    assert (
        opened.get("/v1/ledger/accounts/bank:settlement/balance?at=1", headers=auditor).json["balance"]
        == 5_000_000
    )
    at = opened.get(
        "/v1/ledger/accounts/bank:settlement/balance?at=2000-01-01T00:00:00Z", headers=auditor
    ).json
    assert at["balance"] == 0
    assert (
        opened.get("/v1/ledger/accounts/bank:settlement/balance?at=yesterday", headers=auditor).status_code
        == 422
    )
    accounts = opened.get("/v1/ledger/accounts", headers=auditor).json["items"]
    assert {a["code"]: a["balance"] for a in accounts}["equity:opening"] == -15_000_000


@pytest.mark.parametrize(
    ("postings", "code"),
    [
        (
            [{"account": "bank:settlement", "amount": 10}, {"account": "equity:opening", "amount": -9}],
            "postings_unbalanced",
        ),
        (
            [{"account": "bank:settlement", "amount": 10}, {"account": "ghost", "amount": -10}],
            "account_unknown",
        ),
        (
            [{"account": "equity:opening", "amount": 10}, {"account": "program:TCXH:budget", "amount": -10}],
            "balance_negative",
        ),
    ],
)
def test_bad_journal_entries_get_precise_422s(opened, admin, auditor, postings, code):
    r = opened.post("/v1/ledger/transactions", headers=admin, json={"memo": "bad", "postings": postings})
    assert r.status_code == 422
    assert r.mimetype == "application/problem+json"
    assert r.json["code"] == code
    balances = {
        a["code"]: a["balance"] for a in opened.get("/v1/ledger/accounts", headers=auditor).json["items"]
    }
    assert set(balances.values()) == {0}


@pytest.mark.parametrize(
    ("postings", "where", "message"),
    [
        (
            [{"account": "bank:settlement", "amount": 0}, {"account": "equity:opening", "amount": 0}],
            ["postings", "0", "amount"],
            "never zero",
        ),
        ([{"account": "bank:settlement", "amount": 10}], ["postings"], "between 2 and 1000"),
        (
            [
                {"account": "bank:sett\u200blement", "amount": 10},
                {"account": "equity:opening", "amount": -10},
            ],
            ["postings", "0", "account"],
            "Not an account code",
        ),
    ],
)
def test_what_the_schema_states_is_a_422_naming_the_field(opened, admin, postings, where, message):
    r = opened.post("/v1/ledger/transactions", headers=admin, json={"memo": "bad", "postings": postings})
    assert r.status_code == 422
    assert r.json["code"] == "validation_failed"
    node = r.json["errors"]["json"]
    for part in where:
        node = node[part]
    assert any(message in m for m in node)


def test_amount_must_be_an_integer(opened, admin):
    r = opened.post(
        "/v1/ledger/transactions",
        headers=admin,
        json={
            "memo": "x",
            "postings": [
                {"account": "bank:settlement", "amount": 1.5},
                {"account": "equity:opening", "amount": -1.5},
            ],
        },
    )
    assert r.status_code == 422
    assert "postings" in json.dumps(r.json["errors"])


def test_idempotency_key_replays_and_conflicts(opened, admin, auditor):
    h = {**admin, "Idempotency-Key": "je-1"}
    first = opened.post("/v1/ledger/transactions", headers=h, json=ENTRY)
    again = opened.post("/v1/ledger/transactions", headers=h, json=ENTRY)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json == first.json
    other = opened.post("/v1/ledger/transactions", headers=h, json={**ENTRY, "memo": "different"})
    assert other.status_code == 409
    assert other.json["code"] == "idempotency_key_reused"
    assert (
        opened.get("/v1/ledger/accounts/bank:settlement/balance", headers=auditor).json["balance"]
        == 5_000_000
    )


def test_reversal_over_http(opened, app, admin, auditor):
    (tx_id,) = post_and_seal(opened, app, admin, 1)
    r = opened.post(f"/v1/ledger/transactions/{tx_id}/reverse", headers=admin, json={"reason": "duplicate"})
    assert r.status_code == 201
    assert r.json["reverses"] == tx_id
    again = opened.post(f"/v1/ledger/transactions/{tx_id}/reverse", headers=admin, json={"reason": "again"})
    assert again.status_code == 409
    assert again.json["code"] == "already_reversed"
    assert opened.get("/v1/ledger/accounts/bank:settlement/balance", headers=auditor).json["balance"] == 0


def test_roles(opened, make_token, auditor):
    officer = {"Authorization": f"Bearer {make_token('officer')}"}
    assert opened.get("/v1/ledger/accounts", headers=officer).status_code == 403
    assert opened.post("/v1/ledger/transactions", headers=auditor, json=ENTRY).status_code == 403
    assert opened.get("/v1/ledger/checkpoint").status_code == 401
    assert opened.get("/v1/ledger/checkpoint", headers=auditor).status_code == 404  # nothing signed yet

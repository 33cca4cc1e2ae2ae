"""Programs, their budget in the ledger, funding and enrolments, through the API."""

from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient

from tests.chopay.helpers import assert_problem
from tests.disbursement.conftest import PROGRAM
from tests.disbursement.helpers import person


def test_a_program_opens_its_ledger_accounts_and_shows_its_budget(
    client: FlaskClient, program: dict[str, Any], admin: dict[str, str]
):
    assert program["budget_balance"] == 10_000_000_000
    assert program["accounts"] == {
        "budget": "program:TCXH:budget",
        "funding": "program:TCXH:funding",
        "benefits": "program:TCXH:benefits",
    }
    assert program["name"] == "Trợ cấp xã hội hằng tháng"
    accounts = client.get("/v1/ledger/accounts", headers=admin).get_json()["items"]
    kinds = {a["code"]: (a["kind"], a["allow_negative"], a["balance"]) for a in accounts}
    assert kinds["program:TCXH:budget"] == ("asset", False, 10_000_000_000)
    assert kinds["program:TCXH:funding"] == ("equity", True, -10_000_000_000)
    assert kinds["program:TCXH:benefits"] == ("expense", True, 0)


def test_funding_is_a_signed_ledger_entry_keyed_by_its_reference(
    client: FlaskClient, program: dict[str, Any], admin: dict[str, str]
):
    body = {"amount": 250_000_000, "reference": "QD-2026-12"}
    first = client.post("/v1/programs/TCXH/funding", json=body, headers={**admin, "Idempotency-Key": "f-1"})
    assert first.status_code == 201
    assert first.get_json()["budget_balance"] == 10_250_000_000
    replay = client.post("/v1/programs/TCXH/funding", json=body, headers={**admin, "Idempotency-Key": "f-1"})
    assert replay.headers["Idempotent-Replayed"] == "true"
    # The same reference under another key is still the same funding, and posts nothing more.
    again = client.post("/v1/programs/TCXH/funding", json=body, headers=admin)
    assert again.status_code == 201
    assert again.get_json()["id"] == first.get_json()["id"]
    other = client.post("/v1/programs/TCXH/funding", json={**body, "amount": 1}, headers=admin)
    assert_problem(other, 409, "funding_reference_reused")
    tx = first.get_json()["transaction"]
    entry = client.get(f"/v1/ledger/transactions/{tx}", headers=admin).get_json()
    assert entry["metadata"] == {"program": "TCXH", "funding_ref": "QD-2026-12"}
    assert {(p["account"], p["amount"]) for p in entry["postings"]} == {
        ("program:TCXH:budget", 250_000_000),
        ("program:TCXH:funding", -250_000_000),
    }
    assert client.get("/v1/programs/TCXH", headers=admin).get_json()["budget_balance"] == 10_250_000_000
    listed = client.get("/v1/programs/TCXH/funding", headers=admin).get_json()["items"]
    assert [f["reference"] for f in listed] == ["QD-2026-11", "QD-2026-12"]


def test_funding_bad_input(client: FlaskClient, program: dict[str, Any], admin: dict[str, str]):
    resp = client.post("/v1/programs/TCXH/funding", json={"amount": -5, "reference": "x"}, headers=admin)
    assert_problem(resp, 422, "validation_failed")
    resp = client.post(
        "/v1/programs/TCXH/funding", json={"amount": 5, "reference": "has space"}, headers=admin
    )
    assert_problem(resp, 422, "validation_failed")
    resp = client.post("/v1/programs/NOPE/funding", json={"amount": 5, "reference": "x"}, headers=admin)
    assert_problem(resp, 404, "program_not_found")


def test_program_fields_are_checked(client: FlaskClient, officer: dict[str, str]):
    assert_problem(
        client.post("/v1/programs", json={**PROGRAM, "code": "tcxh"}, headers=officer),
        422,
        "validation_failed",
    )
    assert_problem(
        client.post("/v1/programs", json={**PROGRAM, "cap": 100}, headers=officer), 422, "cap_below_amount"
    )
    assert_problem(
        client.post("/v1/programs", json={**PROGRAM, "source_bin": "123456"}, headers=officer),
        422,
        "bin_unknown",
    )
    assert client.post("/v1/programs", json=PROGRAM, headers=officer).status_code == 201
    assert_problem(client.post("/v1/programs", json=PROGRAM, headers=officer), 409, "program_exists")


def test_patch_and_list(client: FlaskClient, program: dict[str, Any], officer: dict[str, str]):
    resp = client.patch(
        "/v1/programs/TCXH", json={"monthly_amount": 600_000, "status": "suspended"}, headers=officer
    )
    assert resp.status_code == 200
    assert (resp.get_json()["monthly_amount"], resp.get_json()["status"]) == (600_000, "suspended")
    assert_problem(
        client.patch("/v1/programs/TCXH", json={"monthly_amount": 2_000_000}, headers=officer),
        422,
        "cap_below_amount",
    )
    assert (
        client.get("/v1/programs?status=suspended", headers=officer).get_json()["items"][0]["code"] == "TCXH"
    )
    assert client.get("/v1/programs?status=active", headers=officer).get_json()["items"] == []


def test_enrolments_by_national_id_never_overlap_and_end(
    client: FlaskClient, program: dict[str, Any], officer: dict[str, str]
):
    p = person(1)
    beneficiary = client.post("/v1/beneficiaries", json=p, headers=officer).get_json()
    body = {"national_id": p["national_id"], "enrolled_from": "2026-01"}
    first = client.post("/v1/programs/TCXH/enrolments", json=body, headers=officer)
    assert first.status_code == 201
    assert first.get_json()["monthly_amount"] == 500_000
    assert first.get_json()["enrolled_to"] is None
    overlap = client.post(
        "/v1/programs/TCXH/enrolments", json={**body, "enrolled_from": "2026-06"}, headers=officer
    )
    assert_problem(overlap, 409, "enrolment_overlaps")
    enrolment = first.get_json()["id"]
    ended = client.post(
        f"/v1/programs/TCXH/enrolments/{enrolment}/end", json={"enrolled_to": "2026-05"}, headers=officer
    )
    assert ended.get_json()["enrolled_to"] == "2026-05"
    later = {"beneficiary_id": beneficiary["id"], "enrolled_from": "2026-06", "monthly_amount": 700_000}
    assert client.post("/v1/programs/TCXH/enrolments", json=later, headers=officer).status_code == 201
    covering = client.get("/v1/programs/TCXH/enrolments?active_in=2026-07", headers=officer).get_json()[
        "items"
    ]
    assert [(e["enrolled_from"], e["monthly_amount"]) for e in covering] == [("2026-06", 700_000)]
    over_cap = {"beneficiary_id": beneficiary["id"], "enrolled_from": "2030-01", "monthly_amount": 5_000_000}
    assert_problem(
        client.post("/v1/programs/TCXH/enrolments", json=over_cap, headers=officer), 422, "amount_over_cap"
    )
    assert_problem(
        client.post(
            "/v1/programs/TCXH/enrolments",
            json={"enrolled_from": "2026-13", "beneficiary_id": 1},
            headers=officer,
        ),
        422,
        "validation_failed",
    )
    both = {"national_id": p["national_id"], "beneficiary_id": 1, "enrolled_from": "2026-01"}
    assert_problem(
        client.post("/v1/programs/TCXH/enrolments", json=both, headers=officer), 422, "validation_failed"
    )
    unknown = {"national_id": "049061999999", "enrolled_from": "2026-01"}
    assert_problem(
        client.post("/v1/programs/TCXH/enrolments", json=unknown, headers=officer),
        404,
        "beneficiary_not_found",
    )

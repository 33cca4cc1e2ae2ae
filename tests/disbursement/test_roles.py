"""Who may call what: every disbursement endpoint against every role, and without a token."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.chopay.helpers import assert_problem

READ = {"officer", "admin", "approver", "auditor"}
WRITE = {"officer", "admin"}
CONTROL = {"officer", "admin", "approver"}
ROLES = ("admin", "officer", "approver", "auditor", "merchant")

ENDPOINTS = [
    ("POST", "/v1/programs", WRITE),
    ("GET", "/v1/programs", READ),
    ("GET", "/v1/programs/TCXH", READ),
    ("PATCH", "/v1/programs/TCXH", WRITE),
    ("POST", "/v1/programs/TCXH/funding", {"admin"}),
    ("GET", "/v1/programs/TCXH/funding", READ),
    ("POST", "/v1/programs/TCXH/enrolments", WRITE),
    ("GET", "/v1/programs/TCXH/enrolments", READ),
    ("POST", "/v1/programs/TCXH/enrolments/1/end", WRITE),
    ("POST", "/v1/beneficiaries", WRITE),
    ("GET", "/v1/beneficiaries", READ),
    ("POST", "/v1/beneficiaries/lookup", READ),
    ("POST", "/v1/beneficiaries/import", WRITE),
    ("GET", "/v1/beneficiaries/1", READ),
    ("PATCH", "/v1/beneficiaries/1", WRITE),
    ("GET", "/v1/beneficiaries/1/history", READ),
    ("GET", "/v1/beneficiaries/1/payouts", READ),
    ("POST", "/v1/batches", WRITE),
    ("GET", "/v1/batches", READ),
    ("GET", "/v1/batches/1", READ),
    ("GET", "/v1/batches/1/items", READ),
    ("GET", "/v1/batches/1/errors", READ),
    ("GET", "/v1/batches/1/errors.csv", READ),
    ("POST", "/v1/batches/1/approve", {"approver"}),
    ("POST", "/v1/batches/1/reject", {"approver"}),
    ("POST", "/v1/batches/1/pause", CONTROL),
    ("POST", "/v1/batches/1/resume", CONTROL),
    ("POST", "/v1/batches/1/cancel", CONTROL),
    ("POST", "/v1/batches/1/retry-failed", CONTROL),
    ("POST", "/v1/batches/1/precheck", CONTROL),
    ("GET", "/v1/batches/1/report.csv", READ),
]


def test_the_matrix_covers_every_disbursement_route(app: Flask):
    routes = {
        (
            method,
            rule.rule.replace("<id:batch_id>", "1")
            .replace("<id:beneficiary_id>", "1")
            .replace("<id:enrolment_id>", "1")
            .replace("<program:code>", "TCXH"),
        )
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith(("/v1/programs", "/v1/beneficiaries", "/v1/batches"))
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    assert routes == {(m, p) for m, p, _ in ENDPOINTS}


@pytest.mark.parametrize("role", ROLES)
def test_each_role_is_allowed_exactly_its_endpoints(
    client: FlaskClient, make_token: Callable[..., str], role: str
):
    token = make_token(role, merchant_id=7 if role == "merchant" else None)
    headers = {"Authorization": f"Bearer {token}"}
    for method, path, allowed in ENDPOINTS:
        resp = client.open(path, method=method, json={}, headers=headers)
        if role in allowed:
            assert resp.status_code not in (401, 403), (method, path, resp.get_json())
        else:
            assert_problem(resp, 403, "role_forbidden")


def test_without_a_token_everything_is_401_before_the_body_is_read(client: FlaskClient):
    for method, path, _ in ENDPOINTS:
        resp = client.open(path, method=method, data=b"{not json", content_type="application/json")
        assert_problem(resp, 401, "token_missing")

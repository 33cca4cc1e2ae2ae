"""Who may call what: the role matrix of every merchant endpoint, and merchant A seeing nothing of B."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from chopay.db import get_db
from merchants.models import Merchant
from tests.merchants.conftest import Headers, vendor
from tests.merchants.test_api import register
from tests.merchants.test_intents import open_intent

W, R, S = "write", "read", "sell"
ALLOWED = {
    W: {"admin", "officer"},
    R: {"admin", "officer", "auditor", "merchant"},
    S: {"admin", "officer", "merchant"},
}


def _endpoints(a: dict[str, Any], intent: dict[str, Any]) -> list[tuple[str, str, str, dict[str, Any]]]:
    m = f"/v1/merchants/{a['id']}"
    i = f"{m}/payment-intents/{intent['id']}"
    csv = b"display_name\n"
    return [
        ("POST", "/v1/merchants", W, {"json": vendor(9)}),
        ("GET", "/v1/merchants", R, {}),
        ("POST", "/v1/merchants/import", W, {"data": {"file": (io.BytesIO(csv), "x.csv")}}),
        ("GET", m, R, {}),
        ("PATCH", m, W, {"json": {"market_name": "Chợ Cồn"}}),
        ("POST", f"{m}/status", W, {"json": {"status": "active"}}),
        ("GET", f"{m}/status-history", R, {}),
        ("GET", f"{m}/qr", R, {}),
        ("POST", f"{m}/payment-intents", S, {"json": {"amount": 1000}}),
        ("GET", f"{m}/payment-intents", S, {}),
        ("GET", i, S, {}),
        ("GET", f"{i}/qr", S, {}),
        ("POST", f"{i}/cancel", S, {}),
    ]


@pytest.fixture
def world(app: Flask, client: FlaskClient, user: Callable[..., tuple[int, Headers]]) -> dict[str, Any]:
    officer = user("officer")[1]
    a = register(client, officer, 1)
    b = register(client, officer, 2)
    with get_db(app).read_session() as s:
        ids = {m.public_id: m.id for m in s.query(Merchant)}
    assert (a["number"], b["number"]) == (ids[a["id"]], ids[b["id"]])  # what binds a merchant user
    heads = {role: user(role)[1] for role in ("admin", "officer", "approver", "auditor")}
    heads["merchant"] = user("merchant", a["number"])[1]
    heads["other merchant"] = user("merchant", b["number"])[1]
    return {"a": a, "b": b, "officer": officer, "heads": heads}


@pytest.mark.parametrize(
    "role", ["admin", "officer", "approver", "auditor", "merchant", "other merchant", None]
)
def test_role_matrix(client: FlaskClient, world: dict[str, Any], role: str | None) -> None:
    for method, url, kind, kwargs in _endpoints(
        world["a"], open_intent(client, world["officer"], world["a"]["id"])
    ):
        headers = world["heads"][role] if role else {}
        resp = client.open(url, method=method, headers=headers, **kwargs)
        status, code = resp.status_code, resp.get_json(silent=True)
        what = f"{role} {method} {url}: {status} {code}"
        if role is None:
            assert status == 401, what
        elif (role if role != "other merchant" else "merchant") not in ALLOWED[kind]:
            assert (status, code["code"]) == (403, "role_forbidden"), what
        elif role == "other merchant" and url.startswith(f"/v1/merchants/{world['a']['id']}"):
            assert (status, code["code"]) == (404, "merchant_not_found"), what
        else:
            assert status < 500, what
            assert status not in (401, 403, 404), what


def test_merchant_a_sees_nothing_of_b(client: FlaskClient, world: dict[str, Any]) -> None:
    a, b, heads = world["a"], world["b"], world["heads"]
    mine = heads["merchant"]
    listed = client.get("/v1/merchants", headers=mine).get_json()["items"]
    assert [m["id"] for m in listed] == [a["id"]]
    assert client.get(f"/v1/merchants?q={b['display_name']}", headers=mine).get_json()["items"] == []
    foreign = client.get(f"/v1/merchants/{b['id']}", headers=mine)
    missing = client.get("/v1/merchants/m_2222222222", headers=mine)
    assert foreign.status_code == missing.status_code == 404
    strip = ("request_id", "detail")
    assert {k: v for k, v in foreign.get_json().items() if k not in strip} == {
        k: v for k, v in missing.get_json().items() if k not in strip
    }
    assert foreign.get_json()["detail"].replace(b["id"], "X") == missing.get_json()["detail"].replace(
        "m_2222222222", "X"
    )
    intent = open_intent(client, world["officer"], b["id"])
    assert (
        client.get(f"/v1/merchants/{b['id']}/payment-intents/{intent['id']}", headers=mine).status_code == 404
    )
    assert (
        client.post(f"/v1/merchants/{b['id']}/payment-intents", json={"amount": 5}, headers=mine).status_code
        == 404
    )


def test_merchant_user_can_sell_on_its_own(client: FlaskClient, world: dict[str, Any]) -> None:
    mine = world["heads"]["merchant"]
    intent = open_intent(client, mine, world["a"]["id"], amount=12_000)
    assert intent["status"] == "open"
    assert client.get(f"/v1/merchants/{world['a']['id']}/qr", headers=mine).status_code == 200


def test_verify_is_public_and_reveals_no_private_data(client: FlaskClient, world: dict[str, Any]) -> None:
    a = world["a"]
    payload = client.get(f"/v1/merchants/{a['id']}/qr?format=txt", headers=world["officer"]).get_data(
        as_text=True
    )
    resp = client.post("/v1/qr/verify", json={"payload": payload.strip()})
    assert resp.status_code == 200
    text = resp.get_data(as_text=True)
    assert resp.get_json()["genuine"] is True
    for private in (a["account_holder"], a["account_number"], "account_holder", "phone"):
        assert private not in text

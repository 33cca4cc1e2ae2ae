"""Payment intents over HTTP: Idempotency-Key, payload, expiry, listing, cancelling and the sweep."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from chopay import jobs as chopay_jobs
from chopay.db import get_db, utcnow
from merchants import domain, jobs
from merchants.models import PaymentIntent
from qr import decode
from tests.chopay.helpers import assert_problem
from tests.merchants.conftest import Headers
from tests.merchants.test_api import _decode_png, register


def open_intent(client: FlaskClient, headers: Headers, merchant: str, **body: Any) -> dict[str, Any]:
    resp = client.post(
        f"/v1/merchants/{merchant}/payment-intents", json={"amount": 45_000, **body}, headers=headers
    )
    assert resp.status_code == 201, resp.get_json()
    out: dict[str, Any] = resp.get_json()
    return out


def test_intent_payload_carries_amount_reference_and_memo(client: FlaskClient, officer: Headers) -> None:
    m = register(client, officer, 1)
    before = utcnow()
    intent = open_intent(client, officer, m["id"], memo="2 kg cà chua!")
    assert domain.REFERENCE_RE.fullmatch(intent["reference"])
    assert intent["status"] == "open"
    assert intent["amount"] == 45_000
    expires = dt.datetime.fromisoformat(intent["expires_at"])
    assert dt.timedelta(minutes=14) < expires - before <= dt.timedelta(minutes=15, seconds=5)
    payload = decode(intent["payload"])
    assert payload.amount == 45_000
    assert payload.initiation == "dynamic"
    assert payload.additional.bill_number == intent["reference"]
    assert payload.additional.purpose == f"{intent['reference']} 2 kg ca chua"
    assert payload.additional.reference == m["id"]
    assert (payload.bin, payload.account) == (m["bin"], m["account_number"])
    png = client.get(intent["qr_url"], headers=officer)
    assert png.status_code == 200
    assert _decode_png(png.data) == intent["payload"]


def test_idempotency_key_returns_the_same_intent(client: FlaskClient, officer: Headers) -> None:
    m = register(client, officer, 1)
    url = f"/v1/merchants/{m['id']}/payment-intents"
    key = {**officer, "Idempotency-Key": "sale-0001"}
    first = client.post(url, json={"amount": 20_000}, headers=key)
    again = client.post(url, json={"amount": 20_000}, headers=key)
    assert first.status_code == again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json()["reference"] == first.get_json()["reference"]
    assert_problem(client.post(url, json={"amount": 30_000}, headers=key), 409, "idempotency_key_reused")
    assert len(client.get(url, headers=officer).get_json()["items"]) == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"amount": 0}, "amount"),
        ({"amount": -5}, "amount"),
        ({"amount": 10**13}, "amount"),
        ({"amount": "1000"}, "amount"),
        ({"amount": 1000, "expires_in": -60}, "expires_in"),
        ({"amount": 1000, "expires_in": 0}, "expires_in"),
        ({"amount": 1000, "expires_at": "2020-01-01T00:00:00+00:00"}, "expires_at"),
        ({"amount": 1000, "memo": "x" * 201}, "memo"),
    ],
)
def test_bad_intent_input_is_422_naming_the_field(
    client: FlaskClient, officer: Headers, body: dict[str, Any], field: str
) -> None:
    m = register(client, officer, 1)
    resp = client.post(f"/v1/merchants/{m['id']}/payment-intents", json=body, headers=officer)
    assert resp.status_code == 422
    problem = resp.get_json()
    assert field in (problem["errors"].get("json") or problem["errors"])
    assert client.get(f"/v1/merchants/{m['id']}/payment-intents", headers=officer).get_json()["items"] == []


def test_largest_amount_is_accepted(client: FlaskClient, officer: Headers) -> None:
    m = register(client, officer, 1)
    assert open_intent(client, officer, m["id"], amount=9_999_999_999_999)["amount"] == 9_999_999_999_999


def test_memo_without_letters_is_dropped_from_purpose(client: FlaskClient, officer: Headers) -> None:
    m = register(client, officer, 1)
    intent = open_intent(client, officer, m["id"], memo="!!!")
    assert decode(intent["payload"]).additional.purpose == intent["reference"]


def test_suspended_merchant_takes_no_intent(client: FlaskClient, officer: Headers) -> None:
    m = register(client, officer, 1)
    client.post(f"/v1/merchants/{m['id']}/status", json={"status": "suspended"}, headers=officer)
    resp = client.post(f"/v1/merchants/{m['id']}/payment-intents", json={"amount": 1000}, headers=officer)
    assert_problem(resp, 422, "merchant_not_active")


def test_get_list_and_cancel(client: FlaskClient, officer: Headers) -> None:
    m = register(client, officer, 1)
    a = open_intent(client, officer, m["id"])
    b = open_intent(client, officer, m["id"], amount=1000)
    base = f"/v1/merchants/{m['id']}/payment-intents"
    assert client.get(f"{base}/{a['id']}", headers=officer).get_json() == a
    first = client.get(f"{base}?limit=1", headers=officer).get_json()
    assert [i["id"] for i in first["items"]] == [a["id"]]
    second = client.get(f"{base}?limit=1&cursor={first['next_cursor']}", headers=officer).get_json()
    assert [i["id"] for i in second["items"]] == [b["id"]]
    cancelled = client.post(f"{base}/{a['id']}/cancel", headers=officer)
    assert cancelled.get_json()["status"] == "cancelled"
    assert_problem(client.post(f"{base}/{a['id']}/cancel", headers=officer), 409, "intent_not_open")
    assert_problem(client.get(f"{base}/{a['id']}/qr", headers=officer), 410, "intent_cancelled")
    only_open = client.get(f"{base}?status=open", headers=officer).get_json()["items"]
    assert [i["id"] for i in only_open] == [b["id"]]
    assert_problem(client.get(f"{base}/pi_222222222222", headers=officer), 404, "intent_not_found")


def test_sweep_expires_intents_past_their_expiry(app: Flask, client: FlaskClient, officer: Headers) -> None:
    m = register(client, officer, 1)
    late = open_intent(client, officer, m["id"], expires_in=60)
    fresh = open_intent(client, officer, m["id"])
    with get_db(app).unit_of_work() as s:
        row = s.query(PaymentIntent).filter_by(public_id=late["id"]).one()
        row.expires_at = utcnow() - dt.timedelta(seconds=1)
    with app.app_context():
        assert jobs.expire_intents() == 1
        assert jobs.expire_intents() == 0
    base = f"/v1/merchants/{m['id']}/payment-intents"
    assert client.get(f"{base}/{late['id']}", headers=officer).get_json()["status"] == "expired"
    assert client.get(f"{base}/{fresh['id']}", headers=officer).get_json()["status"] == "open"
    assert jobs.EXPIRE in {sweep.name for sweep in chopay_jobs.sweeps(app)}


def test_qr_of_an_intent_past_its_expiry_is_410_before_the_sweep(
    app: Flask, client: FlaskClient, officer: Headers
) -> None:
    m = register(client, officer, 1)
    intent = open_intent(client, officer, m["id"])
    with get_db(app).unit_of_work() as s:
        row = s.query(PaymentIntent).filter_by(public_id=intent["id"]).one()
        row.expires_at = utcnow() - dt.timedelta(seconds=1)
    assert_problem(client.get(intent["qr_url"], headers=officer), 410, "intent_expired")

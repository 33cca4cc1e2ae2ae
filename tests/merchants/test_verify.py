"""The genuine-code check: every reason a pasted-over sticker is caught by, and nothing private shown."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from chopay.crypto import data_keys
from chopay.db import get_db, utcnow
from merchants.models import PaymentIntent
from merchants.services import codes as codes_service
from merchants.services import registry
from qr import build_vietqr
from tests.merchants.conftest import BIN, Headers, vendor
from tests.merchants.test_api import register
from tests.merchants.test_intents import open_intent

PRIVATE = ("account_holder", "phone", "account_number", "NGUYEN VAN THU")


def verify(client: FlaskClient, payload: str) -> dict[str, Any]:
    resp = client.post("/v1/qr/verify", json={"payload": payload})
    assert resp.status_code == 200, resp.get_json()
    text = resp.get_data(as_text=True)
    for secret in PRIVATE:
        assert secret not in text
    body: dict[str, Any] = resp.get_json()
    return body


def codes(body: dict[str, Any]) -> list[str]:
    return [r["code"] for r in body["reasons"]]


def static(client: FlaskClient, headers: Headers, merchant: dict[str, Any]) -> str:
    return (
        client.get(f"/v1/merchants/{merchant['id']}/qr?format=txt", headers=headers)
        .get_data(as_text=True)
        .strip()
    )


def forged(merchant: dict[str, Any], **changes: Any) -> str:
    fields: dict[str, Any] = {
        "bin": merchant["bin"],
        "account": merchant["account_number"],
        "mcc": "5499",
        "merchant_name": merchant["qr_name"],
        "merchant_city": merchant["city"],
        "store": merchant["stall"],
        "reference": merchant["id"],
    }
    fields.update(changes)
    return build_vietqr(**fields)


def test_static_code_of_an_active_merchant_is_genuine(client: FlaskClient, officer: Headers) -> None:
    m = register(client, officer, 1)
    body = verify(client, static(client, officer, m))
    assert body["genuine"] is True
    assert body["reasons"] == []
    assert body["merchant"]["id"] == m["id"]
    assert body["merchant"]["display_name"] == m["display_name"]


@pytest.mark.parametrize(
    ("edit", "reason"),
    [({"stall": "B-077"}, "payload_altered"), ({"qr_name": "Sap ca Co Nam"}, "name_mismatch")],
)
def test_a_sticker_printed_before_an_edit_no_longer_verifies(
    client: FlaskClient, officer: Headers, edit: dict[str, str], reason: str
) -> None:
    """Why README tells operators to reprint the poster after editing a vendor's stall or name."""
    m = register(client, officer, 1)
    old = static(client, officer, m)
    resp = client.patch(f"/v1/merchants/{m['id']}", json=edit, headers=officer)
    assert resp.status_code == 200, resp.get_json()
    assert codes(verify(client, old)) == [reason]
    assert verify(client, static(client, officer, m))["genuine"] is True


def test_open_intent_is_genuine_and_a_paid_or_expired_one_is_not(
    app: Flask, client: FlaskClient, officer: Headers
) -> None:
    m = register(client, officer, 1)
    intent = open_intent(client, officer, m["id"])
    body = verify(client, intent["payload"])
    assert (body["genuine"], body["intent"]["reference"]) == (True, intent["reference"])
    with get_db(app).unit_of_work() as s:
        row = s.query(PaymentIntent).filter_by(public_id=intent["id"]).one()
        row.expires_at = utcnow() - dt.timedelta(seconds=1)
    assert codes(verify(client, intent["payload"])) == ["intent_expired"]
    with get_db(app).unit_of_work() as s:
        row = s.query(PaymentIntent).filter_by(public_id=intent["id"]).one()
        row.status = "paid"
    assert codes(verify(client, intent["payload"])) == ["intent_paid"]


def test_scammer_account_under_the_vendor_label(client: FlaskClient, officer: Headers) -> None:
    m = register(client, officer, 1)
    body = verify(client, forged(m, account="8888888888"))
    assert body["genuine"] is False
    assert codes(body) == ["unknown_account", "account_mismatch"]
    assert body["merchant"]["id"] == m["id"]


def test_scammer_account_of_another_vendor(client: FlaskClient, officer: Headers) -> None:
    m = register(client, officer, 1)
    other = register(client, officer, 2)
    assert codes(verify(client, forged(m, account=other["account_number"]))) == ["account_mismatch"]


def test_name_differs(client: FlaskClient, officer: Headers) -> None:
    m = register(client, officer, 1)
    assert codes(verify(client, forged(m, merchant_name="SAP RAU CHINH HANG"))) == ["name_mismatch"]


@pytest.mark.parametrize("status", ["suspended", "closed"])
def test_suspended_or_closed_merchant(client: FlaskClient, officer: Headers, status: str) -> None:
    m = register(client, officer, 1)
    payload = static(client, officer, m)
    client.post(f"/v1/merchants/{m['id']}/status", json={"status": status}, headers=officer)
    body = verify(client, payload)
    assert (body["genuine"], codes(body)) == (False, [f"merchant_{status}"])


def test_amount_written_into_a_static_code(client: FlaskClient, officer: Headers) -> None:
    m = register(client, officer, 1)
    assert codes(verify(client, forged(m, amount=500_000))) == ["payload_altered"]


def test_unknown_account_without_label(client: FlaskClient, officer: Headers) -> None:
    body = verify(client, build_vietqr(bin=BIN, account="7777777777", merchant_name="SAP RAU"))
    assert (body["genuine"], body["merchant"], codes(body)) == (False, None, ["unknown_account"])


def test_broken_crc_reports_the_decoder_error_and_offset(client: FlaskClient, officer: Headers) -> None:
    m = register(client, officer, 1)
    payload = static(client, officer, m)
    tampered = payload[:-4] + ("0000" if payload[-4:] != "0000" else "1111")
    body = verify(client, tampered)
    assert body["genuine"] is False
    [reason] = body["reasons"]
    assert (reason["code"], reason["error_code"], reason["offset"]) == (
        "qr_broken",
        "crc_mismatch",
        len(payload) - 4,
    )


def test_truncated_structure(client: FlaskClient) -> None:
    [reason] = verify(client, "000201010212")["reasons"]
    assert reason["code"] == "qr_broken"
    assert reason["error_code"]
    assert isinstance(reason["offset"], int)


def test_verify_is_rate_limited_per_client_address(make_app: Callable[..., Flask]) -> None:
    client = make_app(public_rate_limit="2/minute").test_client()
    first = {"REMOTE_ADDR": "192.0.2.10"}
    answers = [
        client.post("/v1/qr/verify", json={"payload": "000201"}, environ_base=first).status_code
        for _ in range(3)
    ]
    assert answers == [200, 200, 429]
    refused = client.post("/v1/qr/verify", json={"payload": "000201"}, environ_base=first)
    assert refused.get_json()["code"] == "too_many_requests"
    other = client.post(
        "/v1/qr/verify", json={"payload": "000201"}, environ_base={"REMOTE_ADDR": "192.0.2.11"}
    )
    assert other.status_code == 200


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.one_of(
        st.text(max_size=300),
        st.text(alphabet="0123456789ABCDEF", max_size=200).map(lambda t: "000201" + t),
    )
)
def test_any_payload_gets_an_answer_with_reasons(session: Session, payload: str) -> None:
    verdict = codes_service.verify(session, payload)
    assert verdict.genuine is False
    assert verdict.reasons
    assert all(r["code"] and r["message"] for r in verdict.reasons)


def test_a_code_changed_in_one_character_is_never_genuine(app: Flask, session: Session) -> None:
    with app.app_context():
        merchant = registry.create(session, data_keys(app), vendor(1))
    genuine = codes_service.static_payload(merchant)
    assert codes_service.verify(session, genuine).genuine is True

    @settings(max_examples=200)
    @given(st.integers(min_value=0, max_value=len(genuine) - 1), st.sampled_from("0123456789ABCDEFmz -."))
    def one_character(at: int, char: str) -> None:
        changed = genuine[:at] + char + genuine[at + 1 :]
        if changed != genuine:
            assert codes_service.verify(session, changed).genuine is False

    one_character()

"""Merchants over HTTP: registration, edits, status, search, static QR, intents, the genuine-code check."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import pytest
import zxingcpp
from flask.testing import FlaskClient
from PIL import Image

from qr import Bank, banks, decode
from tests.chopay.helpers import assert_problem
from tests.merchants.conftest import BIN, Headers, vendor


def register(client: FlaskClient, headers: Headers, n: int = 1, **fields: Any) -> dict[str, Any]:
    resp = client.post("/v1/merchants", json=vendor(n, **fields), headers=headers)
    assert resp.status_code == 201, resp.get_json()
    body: dict[str, Any] = resp.get_json()
    return body


def test_register_and_read_back(client: FlaskClient, officer: Headers) -> None:
    resp = client.post("/v1/merchants", json=vendor(1, display_name="Sạp cá Đỗ Thị Thử"), headers=officer)
    assert resp.status_code == 201
    body = resp.get_json()
    assert resp.headers["Location"] == f"/v1/merchants/{body['id']}"
    assert body["qr_name"] == "Sap ca Do Thi Thu"
    assert body["city"] == "Da Nang"
    assert body["mcc"] == "5499"
    assert body["status"] == "active"
    assert body["phone"] == "*******001"
    assert client.get(f"/v1/merchants/{body['id']}", headers=officer).get_json() == body


def test_display_name_is_stored_nfc(client: FlaskClient, officer: Headers) -> None:
    decomposed = "Sa\u0323p rau"  # "Sạp" written with a combining dot below
    body = register(client, officer, display_name=decomposed)
    assert body["display_name"] == "Sạp rau"


def test_duplicate_active_account_is_409_naming_the_existing(client: FlaskClient, officer: Headers) -> None:
    first = register(client, officer, 1)
    resp = client.post(
        "/v1/merchants", json=vendor(2, account_number=vendor(1)["account_number"]), headers=officer
    )
    body = assert_problem(resp, 409, "merchant_exists")
    assert body["existing"]["id"] == first["id"]
    assert first["id"] in body["detail"]


@pytest.mark.parametrize(
    ("fields", "code", "field"),
    [
        ({"bin": "999998"}, "bin_unknown", "bin"),
        ({"display_name": "菜摊", "stall": "A-1"}, "qr_name_not_ascii", "qr_name"),
        ({"phone": "12345"}, "phone_invalid", "phone"),
        ({"display_name": "  "}, "field_required", "display_name"),
    ],
)
def test_domain_rules_are_precise_422(
    client: FlaskClient, officer: Headers, fields: dict[str, Any], code: str, field: str
) -> None:
    body = assert_problem(client.post("/v1/merchants", json=vendor(1, **fields), headers=officer), 422, code)
    assert field in body["errors"]
    assert body["problems"][0]["field"] == field
    assert client.get("/v1/merchants", headers=officer).get_json()["items"] == []


def test_bank_that_does_not_receive_is_422(
    client: FlaskClient, officer: Headers, monkeypatch: pytest.MonkeyPatch
) -> None:
    closed = Bank("999999", "X", "Closed Bank", "Ngân hàng Thử", None, False, False, "bank")
    real = banks.by_bin
    monkeypatch.setattr(banks, "by_bin", lambda b: closed if b == "999999" else real(b))
    body = assert_problem(
        client.post("/v1/merchants", json=vendor(1, bin="999999"), headers=officer), 422, "bank_not_receiving"
    )
    assert "Closed Bank" in body["errors"]["bin"][0]


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"bin": "97043"}, "bin"),
        ({"account_number": "12345"}, "account_number"),
        ({"account_number": "1234-5678"}, "account_number"),
        ({"qr_name": "Sạp rau"}, "qr_name"),
        ({"qr_name": "x" * 26}, "qr_name"),
        ({"city": "Thành phố Đà Nẵng"}, "city"),
        ({"mcc": "54990"}, "mcc"),
        ({"stall": "Sạp 1"}, "stall"),
    ],
)
def test_schema_rules_are_field_errors(
    client: FlaskClient, officer: Headers, fields: dict[str, Any], field: str
) -> None:
    body = assert_problem(
        client.post("/v1/merchants", json=vendor(1, **fields), headers=officer), 422, "validation_failed"
    )
    assert field in body["errors"]["json"]


def test_patch_renames_derived_qr_name_but_keeps_an_edited_one(client: FlaskClient, officer: Headers) -> None:
    a = register(client, officer, 1)
    resp = client.patch(
        f"/v1/merchants/{a['id']}", json={"display_name": "Sạp trái cây Út Thử"}, headers=officer
    )
    assert resp.get_json()["qr_name"] == "Sap trai cay Ut Thu"
    resp = client.patch(f"/v1/merchants/{a['id']}", json={"qr_name": "UT THU FRUIT"}, headers=officer)
    assert resp.get_json()["qr_name"] == "UT THU FRUIT"
    resp = client.patch(f"/v1/merchants/{a['id']}", json={"display_name": "Sạp Út Thử"}, headers=officer)
    assert resp.get_json()["qr_name"] == "UT THU FRUIT"


def test_patch_to_an_account_in_use_is_409(client: FlaskClient, officer: Headers) -> None:
    a = register(client, officer, 1)
    b = register(client, officer, 2)
    resp = client.patch(
        f"/v1/merchants/{b['id']}", json={"account_number": a["account_number"]}, headers=officer
    )
    assert assert_problem(resp, 409, "merchant_exists")["existing"]["id"] == a["id"]
    assert (
        client.get(f"/v1/merchants/{b['id']}", headers=officer).get_json()["account_number"]
        == b["account_number"]
    )


def test_status_changes_are_recorded(client: FlaskClient, user: Callable[..., tuple[int, Headers]]) -> None:
    officer_id, officer = user("officer")
    a = register(client, officer, 1)
    resp = client.post(
        f"/v1/merchants/{a['id']}/status", json={"status": "suspended", "reason": "Sai tên"}, headers=officer
    )
    assert resp.get_json()["status"] == "suspended"
    client.post(f"/v1/merchants/{a['id']}/status", json={"status": "active"}, headers=officer)
    client.post(f"/v1/merchants/{a['id']}/status", json={"status": "closed"}, headers=officer)
    assert_problem(
        client.post(f"/v1/merchants/{a['id']}/status", json={"status": "active"}, headers=officer),
        409,
        "status_transition",
    )
    history = client.get(f"/v1/merchants/{a['id']}/status-history", headers=officer).get_json()["items"]
    assert [(h["from_status"], h["to_status"]) for h in history] == [
        (None, "active"),
        ("active", "suspended"),
        ("suspended", "active"),
        ("active", "closed"),
    ]
    assert history[1]["reason"] == "Sai tên"
    assert {h["changed_by"] for h in history} == {officer_id}
    url = f"/v1/merchants/{a['id']}/status-history?limit=3"
    first = client.get(url, headers=officer).get_json()
    rest = client.get(f"{url}&cursor={first['next_cursor']}", headers=officer).get_json()
    assert [h["id"] for h in first["items"] + rest["items"]] == [h["id"] for h in history]
    assert rest["next_cursor"] is None


def test_list_filters_search_and_pages(client: FlaskClient, officer: Headers) -> None:
    a = register(client, officer, 1, display_name="Sạp Rau Bà Tư Thử")
    b = register(
        client, officer, 2, display_name="Hàng cá Cô Thử", market_code="CHO-CON", ward="Phường Hòa Thuận"
    )
    c = register(client, officer, 3, display_name="Sạp rau Út Thử")
    client.post(f"/v1/merchants/{c['id']}/status", json={"status": "suspended"}, headers=officer)

    def ids(query: str) -> list[str]:
        return [m["id"] for m in client.get(f"/v1/merchants?{query}", headers=officer).get_json()["items"]]

    assert ids("q=SAP RAU") == [a["id"], c["id"]]
    assert ids("q=ca%20co") == [b["id"]]
    assert ids("market=CHO-CON") == [b["id"]]
    assert ids("ward=Ph%C6%B0%E1%BB%9Dng%20H%C3%B2a%20Thu%E1%BA%ADn") == [b["id"]]
    assert ids("status=suspended") == [c["id"]]
    first = client.get("/v1/merchants?limit=2", headers=officer).get_json()
    assert [m["id"] for m in first["items"]] == [a["id"], b["id"]]
    rest = client.get(f"/v1/merchants?limit=2&cursor={first['next_cursor']}", headers=officer).get_json()
    assert [m["id"] for m in rest["items"]] == [c["id"]]
    assert rest["next_cursor"] is None


def _decode_png(data: bytes) -> str:
    found = zxingcpp.read_barcodes(Image.open(io.BytesIO(data)))
    assert len(found) == 1
    text: str = found[0].text
    return text


def test_static_qr_png_decodes_to_the_merchant_payload(client: FlaskClient, officer: Headers) -> None:
    a = register(client, officer, 7)
    resp = client.get(f"/v1/merchants/{a['id']}/qr?format=png&size=6", headers=officer)
    assert resp.status_code == 200
    assert resp.mimetype == "image/png"
    payload = decode(_decode_png(resp.data))
    assert (payload.bin, payload.account, payload.service) == (BIN, a["account_number"], "QRIBFTTA")
    assert (payload.mcc, payload.merchant_name, payload.merchant_city) == ("5499", a["qr_name"], "Da Nang")
    assert payload.additional.store == "A-007"
    assert payload.additional.reference == a["id"]
    assert payload.initiation == "static"
    assert payload.amount is None
    text = client.get(f"/v1/merchants/{a['id']}/qr?format=txt", headers=officer)
    assert text.get_data(as_text=True).strip() == payload.raw
    svg = client.get(f"/v1/merchants/{a['id']}/qr?format=svg", headers=officer)
    assert svg.mimetype == "image/svg+xml"
    assert svg.get_data(as_text=True).startswith("<svg")


def test_static_qr_etag_and_304(client: FlaskClient, officer: Headers) -> None:
    a = register(client, officer, 1)
    url = f"/v1/merchants/{a['id']}/qr"
    first = client.get(url, headers=officer)
    etag = first.headers["ETag"]
    assert "no-cache" in first.headers["Cache-Control"]
    again = client.get(url, headers={**officer, "If-None-Match": etag})
    assert again.status_code == 304
    assert again.data == b""
    client.patch(f"/v1/merchants/{a['id']}", json={"stall": "B-002"}, headers=officer)
    changed = client.get(url, headers={**officer, "If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["ETag"] != etag


@pytest.mark.parametrize("status", ["suspended", "closed"])
def test_qr_of_a_suspended_or_closed_merchant_is_410(
    client: FlaskClient, officer: Headers, status: str
) -> None:
    a = register(client, officer, 1)
    client.post(f"/v1/merchants/{a['id']}/status", json={"status": status}, headers=officer)
    assert_problem(client.get(f"/v1/merchants/{a['id']}/qr", headers=officer), 410, f"merchant_{status}")


def test_patch_changes_and_removes_the_phone(client: FlaskClient, officer: Headers) -> None:
    a = register(client, officer, 1)
    url = f"/v1/merchants/{a['id']}"
    assert (
        client.patch(url, json={"phone": "+84 912 345 678"}, headers=officer).get_json()["phone"]
        == "*******678"
    )
    assert client.patch(url, json={"phone": None}, headers=officer).get_json()["phone"] is None
    assert_problem(client.patch(url, json={"phone": "0123"}, headers=officer), 422, "phone_invalid")
    assert_problem(client.patch(url, json={"qr_name": None}, headers=officer), 422, "validation_failed")

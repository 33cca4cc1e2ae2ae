"""A market board's day: import vendors, print a sticker, sell with a dynamic QR, catch a forged sticker."""

from __future__ import annotations

import io

from flask import Flask
from flask.testing import FlaskClient

from chopay.db import get_db, utcnow
from merchants.services import intents
from qr import build_vietqr, decode
from tests.disbursement.helpers import xlsx_file
from tests.merchants.conftest import Headers
from tests.merchants.test_api import _decode_png
from tests.merchants.test_import import HEADER, rows


def test_market_board_story(app: Flask, client: FlaskClient, officer: Headers) -> None:
    # 1. The board imports its vendor list exported from Excel.
    data = xlsx_file(HEADER, rows(1, 2, 3))
    report = client.post(
        "/v1/merchants/import",
        data={"file": (io.BytesIO(data), "cho-han.xlsx")},
        headers=officer,
        content_type="multipart/form-data",
    ).get_json()
    assert report["created"] == 3
    vendor_id = report["merchants"][0]["id"]
    vendor = client.get(f"/v1/merchants/{vendor_id}", headers=officer).get_json()

    # 2. It prints the stall sticker; any banking app reads it.
    png = client.get(f"/v1/merchants/{vendor_id}/qr?format=png", headers=officer)
    sticker = _decode_png(png.data)
    assert decode(sticker).account == vendor["account_number"]
    assert client.post("/v1/qr/verify", json={"payload": sticker}).get_json()["genuine"] is True

    # 3. The vendor shows a QR for an exact amount.
    intent = client.post(
        f"/v1/merchants/{vendor_id}/payment-intents",
        json={"amount": 85_000, "memo": "cá thu"},
        headers={**officer, "Idempotency-Key": "sale-1"},
    ).get_json()
    assert _decode_png(client.get(intent["qr_url"], headers=officer).data) == intent["payload"]

    # 4. The buyer pays; the bank notification settles the intent (as the intake does).
    with get_db(app).unit_of_work() as s:
        found = intents.find_open_intent(s, intent["reference"])
        assert found is not None
        assert intents.settle_intent(s, found, 85_000, utcnow()) == "paid"
    url = f"/v1/merchants/{vendor_id}/payment-intents/{intent['id']}"
    assert client.get(url, headers=officer).get_json()["status"] == "paid"
    assert [
        r["code"]
        for r in client.post("/v1/qr/verify", json={"payload": intent["payload"]}).get_json()["reasons"]
    ] == ["intent_paid"]

    # 5. A scammer pastes his own code over the sticker: the buyer's check says why it is fake.
    fake = build_vietqr(
        bin=vendor["bin"],
        account="8888888888",
        merchant_name=vendor["qr_name"],
        merchant_city="Da Nang",
        store=vendor["stall"],
        reference=vendor_id,
        mcc="5499",
    )
    verdict = client.post("/v1/qr/verify", json={"payload": fake}).get_json()
    assert verdict["genuine"] is False
    assert {r["code"] for r in verdict["reasons"]} == {"unknown_account", "account_mismatch"}

    # 6. The board suspends the vendor: the sticker is no longer served, and checks say so.
    client.post(
        f"/v1/merchants/{vendor_id}/status",
        json={"status": "suspended", "reason": "Hết hợp đồng"},
        headers=officer,
    )
    assert client.get(f"/v1/merchants/{vendor_id}/qr", headers=officer).status_code == 410
    assert [
        r["code"] for r in client.post("/v1/qr/verify", json={"payload": sticker}).get_json()["reasons"]
    ] == ["merchant_suspended"]

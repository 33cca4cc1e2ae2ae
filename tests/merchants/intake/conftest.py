"""Fixtures of the intake tests: connectors in each format, vendors, intents, signed deliveries."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from chopay.config import Settings
from chopay.crypto import data_keys
from chopay.db import get_db
from merchants.models import Merchant, PaymentIntent
from merchants.services import intents, registry
from payments.rails import webhooks as wh
from tests.merchants.conftest import BIN, vendor

CHOPAY_SECRET = "whsec_test_bank_a_secret"
SEPAY_KEY = "spk_test_cho_han_key"
PAYOS_KEY = "payos-test-checksum-key"
CONNECTORS = f"bank-a=chopay:{CHOPAY_SECRET}; sepay-a=sepay:{SEPAY_KEY}; payos-a=payos/{BIN}:{PAYOS_KEY}"
OCCURRED = dt.datetime(2026, 12, 1, 9, 30, tzinfo=wh.VIETNAM)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Declare one connector of each format."""
    return dataclasses.replace(settings, bank_connectors=CONNECTORS)


@pytest.fixture
def make_merchant(app: Flask) -> Callable[..., Merchant]:
    def factory(n: int = 1, **fields: Any) -> Merchant:
        with app.app_context(), get_db(app).unit_of_work() as s:
            return registry.create(s, data_keys(app), vendor(n, **fields))

    return factory


@pytest.fixture
def make_intent(app: Flask) -> Callable[..., PaymentIntent]:
    def factory(merchant: Merchant, amount: int = 50_000, **kwargs: Any) -> PaymentIntent:
        with app.app_context(), get_db(app).unit_of_work() as s:
            found = s.get(Merchant, merchant.id)
            assert found is not None
            return intents.create_intent(s, found, amount=amount, **kwargs)

    return factory


def chopay_body(**fields: Any) -> bytes:
    values: dict[str, Any] = {
        "bank_txn_id": "FT26335000001",
        "bin": BIN,
        "account_number": "9000000001",
        "amount": 50_000,
        "description": "thanh toan",
        "occurred_at": OCCURRED.isoformat(),
        "payer_name": "NGUYEN VAN KHACH TEST",
    }
    values.update(fields)
    return json.dumps({k: v for k, v in values.items() if v is not ...}).encode()


def sepay_body(**fields: Any) -> bytes:
    values: dict[str, Any] = {
        "id": 92704,
        "gateway": "Vietcombank",
        "transactionDate": "2026-12-01 09:30:00",
        "accountNumber": "9000000001",
        "code": None,
        "content": "thanh toan",
        "transferType": "in",
        "transferAmount": 50_000,
        "accumulated": 1_050_000,
        "subAccount": None,
        "referenceCode": "FT26335000002",
        "description": "thanh toan",
    }
    values.update(fields)
    return json.dumps(values).encode()


def payos_data(**fields: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "orderCode": 123,
        "amount": 50_000,
        "description": "thanh toan",
        "accountNumber": "9000000001",
        "reference": "FT26335000003",
        "transactionDateTime": "2026-12-01 09:30:00",
        "currency": "VND",
        "paymentLinkId": "0" * 32,
        "code": "00",
        "desc": "success",
        "counterAccountBankId": "970415",
        "counterAccountBankName": "VietinBank",
        "counterAccountName": "NGUYEN VAN KHACH TEST",
        "counterAccountNumber": "9000000000",
        "virtualAccountName": "",
        "virtualAccountNumber": "",
    }
    values.update(fields)
    return values


class Bank:
    """Deliver notifications to the app in the three formats, signed as a real sender signs."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client

    def chopay(
        self, body: bytes, *, secret: str = CHOPAY_SECRET, connector: str = "bank-a", **kw: Any
    ) -> Any:
        headers = wh.chopay_headers(connector, body, secret, **kw)
        return self.client.post("/v1/bank-notifications", data=body, headers=headers)

    def sepay(self, body: bytes, *, key: str = SEPAY_KEY, connector: str = "sepay-a") -> Any:
        return self.client.post(
            f"/v1/bank-notifications/sepay/{connector}", data=body, headers=wh.sepay_headers(key)
        )

    def payos(
        self,
        data: dict[str, Any],
        *,
        key: str = PAYOS_KEY,
        connector: str = "payos-a",
        success: bool | None = None,
        **kw: Any,
    ) -> Any:
        body = wh.sign_payos(data, key, **kw)
        if success is not None:  # the checksum covers only data: the envelope may say anything
            body = json.dumps({**json.loads(body), "success": success}).encode()
        return self.client.post(
            f"/v1/bank-notifications/payos/{connector}",
            data=body,
            headers={"Content-Type": "application/json"},
        )


@pytest.fixture
def bank(client: FlaskClient) -> Bank:
    return Bank(client)

"""Incoming payments: money into a merchant account, notified in each connector's format."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest
from flask import Flask

from payments.rails import webhooks as wh

from .conftest import replace_config, wait_for

MERCHANT = {"to_bin": "970436", "to_account": "0123456789"}


@dataclass
class Receiver:
    """A scripted chopay intake: answers statuses in turn (then 200) and keeps requests."""

    statuses: list[int] = field(default_factory=list)
    requests: list[httpx.Request] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        status = self.statuses.pop(0) if self.statuses else 200
        return httpx.Response(status, json={"success": status < 300})


@pytest.fixture
def receiver(bank: Flask) -> Iterator[Receiver]:
    scripted = Receiver()
    deliverer = bank.extensions["fakebank"].deliverer
    deliverer.client = httpx.Client(transport=httpx.MockTransport(scripted))
    replace_config(bank, retry_base_ms=1, retry_max_ms=5, max_attempts=4, notify_url="http://chopay.test")
    deliverer.config = bank.extensions["fakebank"].config
    yield scripted
    deliverer.client.close()


def connect(client: httpx.Client, name: str, fmt: str, secret: str) -> None:
    response = client.put(f"/admin/connectors/{name}", json={"format": fmt, "secret": secret})
    assert response.status_code == 200


def deliver(bank: Flask, until: int, receiver: Receiver) -> None:
    deliverer = bank.extensions["fakebank"].deliverer
    wait_for(lambda: deliverer.run_once() >= 0 and len(receiver.requests) >= until)


def test_chopay_format_is_signed_and_carries_the_credit(bank, wsgi_client, receiver):
    connect(wsgi_client, "cho-ben-thanh", "chopay", "whsec_test")
    paid = wsgi_client.post("/admin/pay", json=MERCHANT | {"amount": 45_000, "memo": "CPABCD2345 pho bo"})
    assert paid.status_code == 201
    result = paid.json()
    assert result["balance"] == 45_000
    deliver(bank, 1, receiver)
    (request,) = receiver.requests
    assert request.url == "http://chopay.test/v1/bank-notifications"
    assert request.headers[wh.CONNECTOR_HEADER] == "cho-ben-thanh"
    wh.verify_chopay(request.content, request.headers[wh.SIGNATURE_HEADER], ["whsec_test"])
    note = wh.parse_chopay(request.content)
    assert (note.bank_txn_id, note.amount, note.description) == (
        result["transfer"],
        45_000,
        "CPABCD2345 pho bo",
    )
    assert note.account_number == MERCHANT["to_account"]
    assert note.payer_name == "NGUYEN VAN KHACH TEST"
    status = wsgi_client.get("/admin/notifications", params={"transfer": result["transfer"]}).json()
    assert [(n["status"], n["attempts"]) for n in status] == [("delivered", 1)]


def test_sepay_format_uses_its_api_key_and_documented_body(bank, wsgi_client, receiver):
    connect(wsgi_client, "sepay-1", "sepay", "sepay_key")
    result = wsgi_client.post(
        "/admin/pay", json=MERCHANT | {"amount": 20_000, "memo": "tien ca", "format": "sepay"}
    )
    deliver(bank, 1, receiver)
    (request,) = receiver.requests
    assert request.url.path == "/v1/bank-notifications/sepay/sepay-1"
    wh.verify_sepay(request.headers["Authorization"], ["sepay_key"])
    note = wh.parse_sepay(request.content)
    assert note.gateway == "Vietcombank"
    assert note.reference_code == result.json()["transfer"]
    assert (note.transfer_type, note.transfer_amount, note.accumulated) == ("in", 20_000, 20_000)


def test_payos_format_verifies_with_the_sdk_rules(bank, wsgi_client, receiver):
    connect(wsgi_client, "payos-1", "payos", "checksum_test")
    result = wsgi_client.post(
        "/admin/pay", json=MERCHANT | {"amount": 30_000, "memo": "gao", "format": "payos"}
    )
    deliver(bank, 1, receiver)
    (request,) = receiver.requests
    assert request.url.path == "/v1/bank-notifications/payos/payos-1"
    note = wh.verify_payos(request.content, ["checksum_test"])
    assert (note.reference, note.amount, note.description) == (result.json()["transfer"], 30_000, "gao")


def test_delivery_retries_with_backoff_until_acknowledged(bank, wsgi_client, receiver):
    connect(wsgi_client, "cho", "chopay", "s")
    receiver.statuses[:] = [500, 401]
    wsgi_client.post("/admin/pay", json=MERCHANT | {"amount": 1000, "memo": "m"})
    deliver(bank, 3, receiver)
    assert [r.content for r in receiver.requests[1:]] == [receiver.requests[0].content] * 2
    (status,) = wsgi_client.get("/admin/notifications").json()
    assert (status["status"], status["attempts"], status["last_status"]) == ("delivered", 3, 200)


def test_delivery_gives_up_after_max_attempts(bank, wsgi_client, receiver):
    connect(wsgi_client, "cho", "chopay", "s")
    receiver.statuses[:] = [503] * 10
    wsgi_client.post("/admin/pay", json=MERCHANT | {"amount": 1000, "memo": "m"})
    deliverer = bank.extensions["fakebank"].deliverer
    wait_for(
        lambda: (
            deliverer.run_once() >= 0
            and wsgi_client.get("/admin/notifications").json()[0]["status"] == "failed"
        )
    )
    assert len(receiver.requests) == 4


def test_duplicates_are_identical_deliveries(bank, wsgi_client, receiver):
    connect(wsgi_client, "sepay-1", "sepay", "k")
    wsgi_client.post("/admin/pay", json=MERCHANT | {"amount": 1000, "memo": "m", "duplicate": 2})
    deliver(bank, 3, receiver)
    assert len({r.content for r in receiver.requests}) == 1
    assert len({json.loads(r.content)["id"] for r in receiver.requests}) == 1


def test_late_notifications_are_signed_in_the_past(bank, wsgi_client, receiver):
    connect(wsgi_client, "cho", "chopay", "s")
    wsgi_client.post("/admin/pay", json=MERCHANT | {"amount": 1000, "memo": "m", "late_s": 400})
    deliver(bank, 1, receiver)
    (request,) = receiver.requests
    with pytest.raises(wh.WebhookError) as exc:
        wh.verify_chopay(request.content, request.headers[wh.SIGNATURE_HEADER], ["s"])
    assert exc.value.code == "signature_expired"


def test_delayed_notifications_wait(bank, wsgi_client, receiver):
    connect(wsgi_client, "cho", "chopay", "s")
    started = time.monotonic()
    wsgi_client.post("/admin/pay", json=MERCHANT | {"amount": 1000, "memo": "m", "delay_s": 1.5})
    assert bank.extensions["fakebank"].deliverer.run_once() == 0
    deliver(bank, 1, receiver)
    assert time.monotonic() - started >= 1.5


def test_rotated_secrets_sign_with_each(bank, wsgi_client, receiver):
    connect(wsgi_client, "cho", "chopay", "old,new")
    wsgi_client.post("/admin/pay", json=MERCHANT | {"amount": 1000, "memo": "m"})
    deliver(bank, 1, receiver)
    header = receiver.requests[0].headers[wh.SIGNATURE_HEADER]
    assert header.count("v1=") == 2
    wh.verify_chopay(receiver.requests[0].content, header, ["new"])


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"to_account": "0123499991"}, 400, "account_closed"),
        ({"to_account": "0123499994"}, 404, "account_not_found"),
        ({"amount": 0}, 400, "amount_invalid"),
        ({"amount": "5"}, 400, "invalid"),
        ({"format": "sepay"}, 400, "connector_unknown"),
        ({"connector": "nobody"}, 400, "connector_unknown"),
        ({"format": "fax"}, 400, "format_unknown"),
    ],
)
def test_refused_payments_move_nothing(wsgi_client, body, status, code):
    response = wsgi_client.post("/admin/pay", json=MERCHANT | {"amount": 1000, "memo": "m"} | body)
    assert (response.status_code, response.json()["error"]) == (status, code)
    account = wsgi_client.get("/admin/accounts/970436/0123456789")
    assert account.status_code == 404 or account.json()["balance"] == 0


def test_without_a_connector_money_moves_and_nothing_is_queued(wsgi_client):
    result = wsgi_client.post("/admin/pay", json=MERCHANT | {"amount": 1000, "memo": "m"}).json()
    assert result["notifications"] == []
    assert wsgi_client.get("/admin/accounts/970436/0123456789").json()["balance"] == 1000


def test_several_connectors_need_a_name_or_format(wsgi_client):
    connect(wsgi_client, "a", "chopay", "s")
    connect(wsgi_client, "b", "sepay", "k")
    response = wsgi_client.post("/admin/pay", json=MERCHANT | {"amount": 1000, "memo": "m"})
    assert response.json()["error"] == "connector_ambiguous"
    assert wsgi_client.post(
        "/admin/pay", json=MERCHANT | {"amount": 1000, "memo": "m", "connector": "b"}
    ).is_success
    listed = wsgi_client.get("/admin/connectors").json()
    assert [(c["name"], c["secret"]) for c in listed] == [("a", "s..."), ("b", "k...")]

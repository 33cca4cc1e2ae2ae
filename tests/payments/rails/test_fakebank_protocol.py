"""The simulator speaks the payOS Payouts API v1 well enough for the unmodified SDK."""

from __future__ import annotations

import json
from typing import Any

import httpx
import payos
import pytest
from flask import Flask
from hypothesis import given
from hypothesis import strategies as st
from payos._crypto import CryptoProvider
from payos.types import GetPayoutListParams, PayoutBatchItem, PayoutBatchRequest
from payos.types.v1 import PayoutRequest

from payments.rails.fakebank import config as cfg
from payments.rails.fakebank.protocol import signature

from .conftest import replace_config, wait_for

GOOD = "0123456789"


def item(ref: str, amount: int = 150_000, account: str = GOOD, bin_: str = "970436") -> PayoutBatchItem:
    return PayoutBatchItem(
        reference_id=ref, amount=amount, description="TCXH 2026-12", to_bin=bin_, to_account_number=account
    )


def batch(ref: str, *items: PayoutBatchItem, validate: bool = False) -> PayoutBatchRequest:
    return PayoutBatchRequest(reference_id=ref, payouts=list(items), validate_destination=validate)


def count(client: httpx.Client, reference: str) -> int:
    return int(client.get("/admin/transfers", params={"reference": reference}).json()["count"])


def test_batch_pays_and_every_read_endpoint_agrees(sdk: payos.PayOS, wsgi_client: httpx.Client):
    before = int(sdk.payouts_account.balance().balance)
    payout = sdk.payouts.batch.create(batch("B1", item("R1"), item("R2", 250_000)), idempotency_key="B1")
    assert payout.reference_id == "B1"
    assert [t.state for t in payout.transactions] == ["SUCCEEDED", "SUCCEEDED"]
    assert payout.approval_state == "COMPLETED"
    assert all(t.reference and t.reference.startswith("FT") for t in payout.transactions)
    assert int(sdk.payouts_account.balance().balance) == before - 400_000
    assert sdk.payouts.get(payout.id) == payout
    assert sdk.payouts.get("B1") == payout
    listed = sdk.payouts.list(GetPayoutListParams(reference_id="R2"))
    assert [p.id for p in listed.data] == [payout.id]
    account = wsgi_client.get(f"/admin/accounts/970436/{GOOD}").json()
    assert account["balance"] == 400_000
    assert account["status"] == "active"


def test_single_payout_is_a_payout_of_one(sdk: payos.PayOS):
    payout = sdk.payouts.create(
        PayoutRequest(
            reference_id="S1", amount=1000, description="x", to_bin="970436", to_account_number=GOOD
        )
    )
    assert [t.reference_id for t in payout.transactions] == ["S1"]
    assert payout.transactions[0].state == "SUCCEEDED"
    assert sdk.payouts.estimate_credit(batch("E1", item("E2", 5), item("E3", 7))).estimate_credit == 12


def test_same_reference_same_body_is_the_same_payout_and_moves_money_once(sdk, wsgi_client):
    request = batch("B1", item("R1"), item("R2"))
    first = sdk.payouts.batch.create(request, idempotency_key="k-1")
    again = sdk.payouts.batch.create(request, idempotency_key="k-2")  # new key, same reference
    replay = sdk.payouts.batch.create(request, idempotency_key="k-1")
    assert first == again == replay
    assert count(wsgi_client, "R1") == 1
    assert count(wsgi_client, "R2") == 1


def test_same_reference_other_body_is_refused(sdk: payos.PayOS, wsgi_client: httpx.Client):
    sdk.payouts.batch.create(batch("B1", item("R1")), idempotency_key="k-1")
    with pytest.raises(payos.APIError) as exc:
        sdk.payouts.batch.create(batch("B1", item("R1", 999)), idempotency_key="k-2")
    assert exc.value.error_code == "03"
    assert exc.value.status_code == 409
    with pytest.raises(payos.APIError) as exc:
        sdk.payouts.batch.create(batch("B9", item("R9")), idempotency_key="k-1")
    assert exc.value.error_code == "03"
    assert "x-idempotency-key" in (exc.value.error_desc or "")
    with pytest.raises(payos.APIError, match="other content"):
        sdk.payouts.batch.create(batch("B2", item("R1", 5)), idempotency_key="k-3")
    assert count(wsgi_client, "R1") == 1
    assert count(wsgi_client, "R9") == 0


def test_an_item_sent_again_in_another_chunk_is_not_executed_again(sdk, wsgi_client):
    first = sdk.payouts.batch.create(batch("B1", item("R1"), item("R2")))
    second = sdk.payouts.batch.create(batch("B2", item("R2"), item("R3")))
    assert second.transactions[0].id == first.transactions[1].id
    assert [count(wsgi_client, r) for r in ("R1", "R2", "R3")] == [1, 1, 1]


@pytest.mark.parametrize(
    ("account", "amount", "bin_", "code"),
    [
        ("0123499991", 1000, "970436", "ACCOUNT_CLOSED"),
        ("0123499992", 1000, "970436", "ACCOUNT_DORMANT"),
        ("0123499993", 1000, "970436", "ACCOUNT_FROZEN"),
        ("0123499994", 1000, "970436", "ACCOUNT_NOT_FOUND"),
        (GOOD, 500_000_001, "970436", "LIMIT_EXCEEDED"),
        (GOOD, 1000, "999999", "BANK_NOT_FOUND"),
    ],
)
def test_documented_account_states_fail_with_their_code(sdk, wsgi_client, account, amount, bin_, code):
    payout = sdk.payouts.batch.create(batch("B1", item("R1", amount, account, bin_), item("R2")))
    failed, paid = payout.transactions
    assert failed.state == "FAILED"
    assert failed.error_code == code
    assert failed.reference is None
    assert paid.state == "SUCCEEDED"
    assert payout.approval_state == "PARTIAL_COMPLETED"
    assert count(wsgi_client, "R1") == 0


def test_name_mismatch_fails_only_when_the_destination_is_validated(sdk: payos.PayOS):
    mismatch = "0123499995"
    validated = sdk.payouts.batch.create(batch("B1", item("R1", account=mismatch), validate=True))
    assert validated.transactions[0].error_code == "NAME_MISMATCH"
    plain = sdk.payouts.batch.create(batch("B2", item("R2", account=mismatch)))
    assert plain.transactions[0].state == "SUCCEEDED"
    holder = sdk.get(f"/v1/accounts/970436/{mismatch}", cast_to=dict, signature_response="header")
    assert holder["accountName"] == "TRAN THI KHAC TEST"


@pytest.mark.parametrize("bank_options", [{"source_balance": 1_000_000}])
def test_insufficient_funds_refuses_the_chunk_and_records_nothing(sdk, wsgi_client):
    with pytest.raises(payos.APIError) as exc:
        sdk.payouts.batch.create(batch("B1", item("R1", 600_000), item("R2", 600_000)))
    assert exc.value.error_code == "04"
    assert exc.value.status_code == 402
    assert count(wsgi_client, "R1") == 0
    with pytest.raises(payos.NotFoundError):
        sdk.payouts.get("B1")
    assert wsgi_client.post("/admin/fund", json={"amount": 500_000}).json()["balance"] == 1_500_000
    payout = sdk.payouts.batch.create(batch("B1", item("R1", 600_000), item("R2", 600_000)))
    assert payout.approval_state == "COMPLETED"
    assert int(sdk.payouts_account.balance().balance) == 300_000


def test_settlement_keeps_transfers_processing_until_settle_ms(bank: Flask, sdk: payos.PayOS):
    replace_config(bank, settle_ms=300)
    payout = sdk.payouts.batch.create(batch("B1", item("R1"), item("R2", account="0123499991")))
    assert [t.state for t in payout.transactions] == ["PROCESSING", "PROCESSING"]
    assert payout.approval_state == "PROCESSING"
    assert payout.transactions[0].reference is None
    settled = wait_for(lambda: (p := sdk.payouts.get(payout.id)).approval_state != "PROCESSING" and p)
    assert [t.state for t in settled.transactions] == ["SUCCEEDED", "FAILED"]


def test_a_returned_payout_is_reversed_with_a_credit_back(sdk, wsgi_client):
    payout = sdk.payouts.batch.create(batch("B1", item("R1")))
    before = int(sdk.payouts_account.balance().balance)
    answer = wsgi_client.post("/admin/payouts/R1/return", json={"reason": "account closed after payment"})
    assert answer.status_code == 200
    assert answer.json()["state"] == "REVERSED"
    assert sdk.payouts.get(payout.id).transactions[0].state == "REVERSED"
    assert int(sdk.payouts_account.balance().balance) == before + 150_000
    moved = wsgi_client.get("/admin/transfers", params={"reference": "R1"}).json()
    assert (moved["count"], moved["returned"]) == (1, 1)
    assert moved["transfers"][1]["description"].startswith("RETURN ")
    again = wsgi_client.post("/admin/payouts/R1/return", json={})
    assert again.status_code == 400
    assert "only SUCCEEDED" in again.json()["message"]


def test_summary_counts_every_reference_once(sdk, wsgi_client):
    sdk.payouts.batch.create(batch("B1", item("R1"), item("R2", 5), item("R3", account="0123499991")))
    sdk.payouts.batch.create(batch("B1", item("R1"), item("R2", 5), item("R3", account="0123499991")))
    summary = wsgi_client.get("/admin/transfers").json()
    assert summary["references"] == 2
    assert summary["paid_amount"] == 150_005
    assert summary["references_paid_more_than_once"] == []


# --- every bad request gets the protocol's envelope -------------------------------------


def _signed(body: Any) -> dict[str, str]:
    try:
        sig = signature(body, cfg.DEMO_CHECKSUM_KEY)
    except UnicodeEncodeError:  # a lone surrogate cannot be signed; the server must still say why
        sig = "00"
    return {
        "x-client-id": cfg.DEMO_CLIENT_ID,
        "x-api-key": cfg.DEMO_API_KEY,
        "x-signature": sig,
        "content-type": "application/json",
    }


GOOD_ITEM = {"referenceId": "R1", "amount": 1, "description": "x", "toBin": "970436", "toAccountNumber": GOOD}


@pytest.mark.parametrize(
    ("path", "body", "code", "words"),
    [
        ("/v1/payouts", GOOD_ITEM | {"amount": 0}, "01", "amount"),
        ("/v1/payouts", GOOD_ITEM | {"amount": 1.5}, "01", "amount"),
        ("/v1/payouts", GOOD_ITEM | {"amount": True}, "01", "amount"),
        ("/v1/payouts", GOOD_ITEM | {"toBin": "97043"}, "01", "toBin"),
        ("/v1/payouts", GOOD_ITEM | {"toAccountNumber": "01 23"}, "01", "toAccountNumber"),
        ("/v1/payouts", GOOD_ITEM | {"referenceId": ""}, "01", "referenceId"),
        ("/v1/payouts", GOOD_ITEM | {"description": "a\ud800"}, "01", "surrogate"),
        ("/v1/payouts", GOOD_ITEM | {"description": "x" * 101}, "01", "description"),
        ("/v1/payouts", GOOD_ITEM | {"extra": 1}, "01", "extra: unknown field"),
        ("/v1/payouts/batch", {"referenceId": "B", "payouts": []}, "01", "payouts"),
        ("/v1/payouts/batch", {"referenceId": "B", "payouts": [GOOD_ITEM, GOOD_ITEM]}, "01", "appears twice"),
        (
            "/v1/payouts/batch",
            {"referenceId": "B", "payouts": [GOOD_ITEM], "validateDestination": 1},
            "01",
            "true",
        ),
        ("/v1/payouts/batch", {"referenceId": "B", "payouts": ["x"]}, "01", "payouts[0]"),
        ("/v1/payouts/batch", [1, 2], "01", "JSON object"),
    ],
)
def test_invalid_bodies_get_code_01_naming_the_field(wsgi_client, path, body, code, words):
    unsigned = {"x-client-id": cfg.DEMO_CLIENT_ID, "x-api-key": cfg.DEMO_API_KEY, "x-signature": "00"}
    headers = _signed(body) if isinstance(body, dict) else unsigned
    response = wsgi_client.post(path, content=json.dumps(body), headers=headers)
    envelope = response.json()
    assert response.status_code == 400
    assert envelope["code"] == code
    assert words in envelope["desc"]
    assert envelope["data"] is None
    assert count(wsgi_client, "R1") == 0


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ({}, 401, "401"),
        ({"x-client-id": cfg.DEMO_CLIENT_ID, "x-api-key": "wrong"}, 401, "401"),
        ({"x-client-id": "someone", "x-api-key": cfg.DEMO_API_KEY}, 401, "401"),
        ({"x-client-id": cfg.DEMO_CLIENT_ID, "x-api-key": cfg.DEMO_API_KEY}, 401, "02"),
        (
            {"x-client-id": cfg.DEMO_CLIENT_ID, "x-api-key": cfg.DEMO_API_KEY, "x-signature": "ab" * 32},
            401,
            "02",
        ),
    ],
)
def test_authentication_and_signature_failures(wsgi_client, headers, status, code):
    response = wsgi_client.post("/v1/payouts", json=GOOD_ITEM, headers=headers)
    assert (response.status_code, response.json()["code"]) == (status, code)
    assert count(wsgi_client, "R1") == 0


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/v1/nowhere", 404, "404"),
        ("DELETE", "/v1/payouts", 405, "405"),
        ("GET", "/v1/payouts/unknown-id", 404, "05"),
        ("GET", "/v1/payouts?limit=0", 400, "01"),
        ("GET", "/v1/payouts?offset=x", 400, "01"),
        ("GET", "/v1/payouts?color=red", 400, "01"),
        ("GET", "/v1/accounts/970436/0123499994", 404, "05"),
    ],
)
def test_other_bad_requests_get_envelopes(wsgi_client, method, path, status, code):
    headers = {"x-client-id": cfg.DEMO_CLIENT_ID, "x-api-key": cfg.DEMO_API_KEY}
    response = wsgi_client.request(method, path, headers=headers)
    assert response.status_code == status
    assert response.json()["code"] == code


def test_non_json_body_is_refused(wsgi_client):
    headers = {"x-client-id": cfg.DEMO_CLIENT_ID, "x-api-key": cfg.DEMO_API_KEY, "x-signature": "00"}
    response = wsgi_client.post("/v1/payouts/batch", content=b"\xff{", headers=headers)
    assert (response.status_code, response.json()["code"]) == (400, "01")


def test_answers_are_signed_and_the_sdk_refuses_a_tampered_one(bank: Flask, sdk: payos.PayOS):
    sdk.payouts.batch.create(batch("B1", item("R1")))

    def tamper(request: httpx.Request) -> httpx.Response:
        with httpx.Client(transport=httpx.WSGITransport(app=bank)) as inner:
            real = inner.send(request)
        body = real.json()
        body["data"]["transactions"][0]["amount"] = 1  # the signature no longer matches
        return httpx.Response(200, json=body, headers={"x-signature": real.headers["x-signature"]})

    liar = payos.PayOS(
        cfg.DEMO_CLIENT_ID,
        cfg.DEMO_API_KEY,
        cfg.DEMO_CHECKSUM_KEY,
        base_url="http://fakebank/",
        max_retries=0,
        http_client=httpx.Client(transport=httpx.MockTransport(tamper)),
    )
    with pytest.raises(payos.InvalidSignatureError):
        liar.payouts.get("B1")


def test_injected_errors_happen_before_processing(bank: Flask, sdk: payos.PayOS, wsgi_client):
    replace_config(bank, error_rate=1.0)
    with pytest.raises(payos.InternalServerError):
        sdk.payouts.batch.create(batch("B1", item("R1")))
    assert wsgi_client.get("/admin/transfers", params={"reference": "R1"}).json()["count"] == 0
    replace_config(bank, error_rate=0.0)
    assert sdk.payouts.batch.create(batch("B1", item("R1"))).approval_state == "COMPLETED"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@given(
    data=st.dictionaries(st.text(max_size=12), json_values, max_size=8), key=st.text(min_size=1, max_size=20)
)
def test_the_fast_signature_string_is_the_sdks(data, key):
    try:
        expected = CryptoProvider().create_signature(key, data)
    except UnicodeEncodeError:  # lone surrogates: the SDK cannot sign them, nor can we
        with pytest.raises(UnicodeEncodeError):
            signature(data, key)
        return
    assert signature(data, key) == expected


def test_list_filters_by_state_category_and_dates(sdk: payos.PayOS):
    paid = sdk.payouts.batch.create(
        PayoutBatchRequest(reference_id="B1", payouts=[item("R1")], category=["tcxh"])
    )
    sdk.payouts.batch.create(batch("B2", item("R2", account="0123499991")))
    today = paid.created_at[:10]

    def ids(**params: Any) -> list[str]:
        return [p.reference_id for p in sdk.payouts.list(GetPayoutListParams(**params)).data]

    assert ids() == ["B2", "B1"]
    assert ids(approval_state="FAILED") == ["B2"]
    assert ids(approval_state="COMPLETED") == ["B1"]
    assert ids(category="tcxh") == ["B1"]
    assert ids(from_date=today, to_date=today) == ["B2", "B1"]
    assert ids(to_date="2020-01-01") == []
    page = sdk.payouts.list(GetPayoutListParams(limit=1))
    assert page.pagination.has_more
    assert ids(limit=1, offset=1) == ["B1"]
    assert not sdk.payouts.list(GetPayoutListParams(limit=1, offset=1)).pagination.has_more


@pytest.mark.parametrize(
    "query", ["approvalState=DONE", "fromDate=yesterday", "toDate=2026-12-01T10:00:00", "limit=101"]
)
def test_bad_list_filters_are_refused(wsgi_client, query):
    headers = {"x-client-id": cfg.DEMO_CLIENT_ID, "x-api-key": cfg.DEMO_API_KEY}
    response = wsgi_client.get(f"/v1/payouts?{query}", headers=headers)
    assert (response.status_code, response.json()["code"]) == (400, "01")

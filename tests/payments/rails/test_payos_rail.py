"""chopay's payOS rail: the SDK behind the seam, every answer classified.

Outbound HTTP is tested with httpx's MockTransport for each kind of provider answer, and
against the in-process simulator for whole exchanges.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest
from flask import Flask

from chopay.config import from_env
from payments.rails import errors
from payments.rails.base import Holder, Outcome, Rail, Reason, TransferRequest
from payments.rails.fakebank import config as cfg
from payments.rails.fakebank.protocol import signature
from payments.rails.payos import PayosRail

from .conftest import replace_config, wait_for

GOOD = "0123456789"


def transfer(ref: str, amount: int = 150_000, account: str = GOOD, bin_: str = "970436") -> TransferRequest:
    return TransferRequest(
        reference=ref, amount=amount, bin=bin_, account_number=account, memo="TCXH 2026-12"
    )


def mock_rail(handler: Callable[[httpx.Request], httpx.Response]) -> PayosRail:
    return PayosRail(
        base_url="http://payos.test",
        client_id="c",
        api_key="k",
        checksum_key="s",
        http_client=httpx.Client(transport=httpx.MockTransport(handler)),
    )


def signed(data: object, status: int = 200, key: str = "s") -> httpx.Response:
    return httpx.Response(
        status,
        json={"code": "00", "desc": "success", "data": data},
        headers={"x-signature": signature(data, key)},
    )


def failing(status: int, code: str, desc: str = "nope") -> Callable[[httpx.Request], httpx.Response]:
    return lambda request: httpx.Response(status, json={"code": code, "desc": desc, "data": None})


def raising(exc: Exception) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    return handler


def test_the_rail_implements_the_seam(rail: PayosRail):
    assert isinstance(rail, Rail)
    assert rail.client.max_retries == 0


def test_settings_default_to_the_simulator_demo_credentials():
    settings = from_env({})
    assert settings.payout_url == f"http://127.0.0.1:{cfg.DEFAULT_PORT}"
    assert (settings.payout_client_id, settings.payout_api_key, settings.payout_checksum_key) == (
        cfg.DEMO_CLIENT_ID,
        cfg.DEMO_API_KEY,
        cfg.DEMO_CHECKSUM_KEY,
    )
    rail = PayosRail.from_settings(from_env({"CHOPAY_PAYOUT_URL": "https://api-merchant.payos.vn"}))
    assert rail.client.base_url == "https://api-merchant.payos.vn/"


def test_a_chunk_goes_out_as_one_signed_batch_with_the_chunk_as_idempotency_key():
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        body = json.loads(request.content)
        assert request.headers["x-signature"] == signature(body, "s")
        transactions = [
            {
                "id": f"t{i}",
                "referenceId": p["referenceId"],
                "amount": p["amount"],
                "description": p["description"],
                "toBin": p["toBin"],
                "toAccountNumber": p["toAccountNumber"],
                "toAccountName": None,
                "reference": f"FT00000000000{i}",
                "transactionDatetime": None,
                "errorMessage": None,
                "errorCode": None,
                "state": "SUCCEEDED",
            }
            for i, p in enumerate(body["payouts"])
        ]
        return signed(
            {
                "id": "p1",
                "referenceId": body["referenceId"],
                "transactions": transactions,
                "category": None,
                "approvalState": "COMPLETED",
                "createdAt": "2026-12-01T10:00:00+07:00",
            }
        )

    results = mock_rail(handler).send([transfer("A1"), transfer("A2", 5)], chunk_reference="C1")
    assert [r.outcome for r in results] == [Outcome.SUCCEEDED, Outcome.SUCCEEDED]
    assert [r.bank_txn_id for r in results] == ["FT000000000000", "FT000000000001"]
    (request,) = seen
    assert request.url.path == "/v1/payouts/batch"
    assert request.headers["x-idempotency-key"] == "C1"
    assert request.headers["x-client-id"] == "c"


@pytest.mark.parametrize(
    ("handler", "kind", "outcome"),
    [
        (failing(500, "20"), errors.TransientRailError, Outcome.TRANSIENT),
        (failing(503, "xx"), errors.TransientRailError, Outcome.TRANSIENT),
        (failing(429, "xx"), errors.TransientRailError, Outcome.TRANSIENT),
        (failing(402, "04", "insufficient balance"), errors.InsufficientFunds, Outcome.INSUFFICIENT_FUNDS),
        (failing(200, "04"), errors.InsufficientFunds, Outcome.INSUFFICIENT_FUNDS),
        (failing(401, "401"), errors.AuthenticationFailed, Outcome.FAILED),
        (failing(409, "03"), errors.RailRefused, Outcome.FAILED),
        (failing(400, "01", "amount"), errors.RailRefused, Outcome.FAILED),
        (lambda r: httpx.Response(200, text="<html>"), errors.RailProtocolError, Outcome.PENDING),
        (lambda r: signed({"unexpected": 1}), errors.RailProtocolError, Outcome.PENDING),
        (lambda r: signed({"id": "x"}, key="another-key"), errors.RailProtocolError, Outcome.PENDING),
        (raising(httpx.ConnectError("refused")), errors.TransientRailError, Outcome.TRANSIENT),
        (raising(httpx.ReadTimeout("slow")), errors.ResponseLost, Outcome.PENDING),
        (raising(httpx.RemoteProtocolError("hung up")), errors.ResponseLost, Outcome.PENDING),
        (raising(httpx.ReadError("reset")), errors.ResponseLost, Outcome.PENDING),
    ],
)
def test_every_failure_of_a_send_is_classified(handler, kind, outcome):
    with pytest.raises(kind) as exc:
        mock_rail(handler).send([transfer("A1")], chunk_reference="C1")
    assert type(exc.value) is kind
    assert exc.value.outcome == outcome


def test_raw_codes_are_kept():
    with pytest.raises(errors.RailRefused) as exc:
        mock_rail(failing(409, "03", "referenceId was used before")).send(
            [transfer("A1")], chunk_reference="C"
        )
    assert exc.value.code == "reference_conflict"
    assert exc.value.raw_code == "03"
    assert "referenceId was used before" in str(exc.value)


def test_a_timeout_on_a_read_is_transient_not_lost():
    with pytest.raises(errors.TransientRailError) as exc:
        mock_rail(raising(httpx.ReadTimeout("slow"))).balance()
    assert type(exc.value) is errors.TransientRailError


def test_balances_must_be_whole_dong():
    data = {"accountNumber": "1", "accountName": "X", "currency": "VND", "balance": "10.50"}
    with pytest.raises(errors.RailProtocolError, match="whole number"):
        mock_rail(lambda r: signed(data)).balance()
    data["balance"] = "1500.00"
    assert mock_rail(lambda r: signed(data)).balance().balance == 1500


def test_lookup_without_the_endpoint_is_unsupported():
    with pytest.raises(errors.RailUnsupported):
        mock_rail(failing(404, "404")).lookup("970436", GOOD)


# --- against the in-process simulator ---------------------------------------------------


def test_outcomes_of_a_mixed_chunk(rail: PayosRail):
    chunk = [
        transfer("A1"),
        transfer("A2", account="0123499991"),
        transfer("A3", account="0123499992"),
        transfer("A4", account="0123499993"),
        transfer("A5", account="0123499994"),
        transfer("A6", amount=600_000_000),
        transfer("A7", bin_="999999"),
    ]
    results = rail.send(chunk, chunk_reference="C1")
    assert [r.reference for r in results] == [t.reference for t in chunk]
    assert results[0].outcome == Outcome.SUCCEEDED
    assert results[0].bank_txn_id is not None
    assert [(r.outcome, r.reason, r.raw_code) for r in results[1:]] == [
        (Outcome.FAILED, Reason.ACCOUNT_CLOSED, "ACCOUNT_CLOSED"),
        (Outcome.FAILED, Reason.ACCOUNT_FROZEN, "ACCOUNT_DORMANT"),
        (Outcome.FAILED, Reason.ACCOUNT_FROZEN, "ACCOUNT_FROZEN"),
        (Outcome.FAILED, Reason.ACCOUNT_NOT_FOUND, "ACCOUNT_NOT_FOUND"),
        (Outcome.FAILED, Reason.LIMIT_EXCEEDED, "LIMIT_EXCEEDED"),
        (Outcome.FAILED, Reason.ACCOUNT_NOT_FOUND, "BANK_NOT_FOUND"),
    ]
    assert all(r.final for r in results)


def test_name_mismatch_when_destinations_are_validated(wsgi_client: httpx.Client):
    rail = PayosRail(
        base_url="http://fakebank",
        client_id=cfg.DEMO_CLIENT_ID,
        api_key=cfg.DEMO_API_KEY,
        checksum_key=cfg.DEMO_CHECKSUM_KEY,
        http_client=wsgi_client,
        validate_destination=True,
    )
    (result,) = rail.send([transfer("A1", account="0123499995")], chunk_reference="C1")
    assert (result.outcome, result.reason) == (Outcome.FAILED, Reason.NAME_MISMATCH)


def test_status_resolves_a_reference_and_none_means_never_sent(rail: PayosRail):
    rail.send([transfer("A1"), transfer("A2", account="0123499991")], chunk_reference="C1")
    assert rail.status("A1").outcome == Outcome.SUCCEEDED
    assert rail.status("A2").reason == Reason.ACCOUNT_CLOSED
    assert rail.status("A1", chunk_reference="C1").outcome == Outcome.SUCCEEDED
    assert rail.status("NEVERSENT") is None


def test_pending_until_settled_then_final(bank: Flask, rail: PayosRail):
    replace_config(bank, settle_ms=200)
    (result,) = rail.send([transfer("A1")], chunk_reference="C1")
    assert result.outcome == Outcome.PENDING
    assert result.raw_state == "PROCESSING"
    assert not result.final
    final = wait_for(lambda: (r := rail.status("A1")) is not None and r.final and r)
    assert final.outcome == Outcome.SUCCEEDED


def test_a_returned_payout_reads_as_returned(rail: PayosRail, wsgi_client: httpx.Client):
    (paid,) = rail.send([transfer("A1")], chunk_reference="C1")
    wsgi_client.post("/admin/payouts/A1/return", json={"reason": "closed"})
    returned = rail.status("A1")
    assert returned.outcome == Outcome.RETURNED
    assert returned.bank_txn_id == paid.bank_txn_id


@pytest.mark.parametrize("bank_options", [{"source_balance": 100_000}])
def test_insufficient_funds_pauses_without_failing_anything(rail: PayosRail, wsgi_client: httpx.Client):
    with pytest.raises(errors.InsufficientFunds) as exc:
        rail.send([transfer("A1", 60_000), transfer("A2", 60_000)], chunk_reference="C1")
    assert exc.value.raw_code == "04"
    assert rail.status("A1") is None
    assert rail.balance().balance == 100_000
    wsgi_client.post("/admin/fund", json={"amount": 20_000})
    results = rail.send([transfer("A1", 60_000), transfer("A2", 60_000)], chunk_reference="C1")
    assert [r.outcome for r in results] == [Outcome.SUCCEEDED, Outcome.SUCCEEDED]
    assert rail.balance().balance == 0


def test_resending_a_chunk_or_its_items_never_pays_twice(rail: PayosRail, wsgi_client: httpx.Client):
    first = rail.send([transfer("A1"), transfer("A2")], chunk_reference="C1")
    again = rail.send([transfer("A1"), transfer("A2")], chunk_reference="C1")
    regrouped = rail.send([transfer("A2"), transfer("A3")], chunk_reference="C2")
    assert first == again
    assert regrouped[0] == first[1]
    for ref in ("A1", "A2", "A3"):
        assert wsgi_client.get("/admin/transfers", params={"reference": ref}).json()["count"] == 1
    with pytest.raises(errors.RailRefused) as exc:
        rail.send([transfer("A1", 1)], chunk_reference="C3")
    assert exc.value.code == "reference_conflict"


def test_lookup_gives_the_holder(rail: PayosRail):
    holder = rail.lookup("970436", GOOD)
    assert holder == Holder("970436", GOOD, holder.holder_name, "active")
    assert holder.holder_name.endswith("TEST 6789")
    assert rail.lookup("970436", "0123499994") is None
    assert rail.lookup("970436", "0123499991").status == "closed"
    mismatch = rail.lookup("970436", "0123499995")
    assert not mismatch.name_matches("Nguyen Van Test 9995")
    assert Holder("970436", GOOD, "NGUYỄN VĂN TEST", "active").name_matches("nguyen van  test")


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"reference": "a1"}, "uppercase"),
        ({"reference": "A" * 17}, "uppercase"),
        ({"amount": 0}, "amount"),
        ({"amount": 1.0}, "amount"),
        ({"bin": "97043"}, "bin"),
        ({"account_number": ""}, "account_number"),
        ({"memo": "x" * 101}, "memo"),
    ],
)
def test_transfer_requests_are_checked_before_anything_is_sent(kwargs, words):
    values = {"reference": "A1", "amount": 1, "bin": "970436", "account_number": GOOD, "memo": "m"} | kwargs
    with pytest.raises(ValueError, match=words):
        TransferRequest(**values)

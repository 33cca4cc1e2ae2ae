"""The three intake endpoints: signatures, matching, exactly once, conflicts, bad input."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from sqlalchemy.orm import Session

from merchants.intake.ledger import ledger_key
from merchants.intake.models import BankNotification, NotificationConflict, Payment
from merchants.models import Merchant, PaymentIntent
from payments.ledger.models import Transaction
from tests.merchants.conftest import BIN
from tests.merchants.intake.conftest import Bank, chopay_body, payos_data, sepay_body


def _counts(session: Session) -> tuple[int, int, int]:
    return (
        session.scalar(sa.select(sa.func.count()).select_from(BankNotification)) or 0,
        session.scalar(sa.select(sa.func.count()).select_from(Payment)) or 0,
        session.scalar(
            sa.select(sa.func.count()).select_from(Transaction).where(Transaction.kind == "merchant.payment")
        )
        or 0,
    )


def test_a_reference_in_a_decorated_description_pays_the_intent(
    bank: Bank,
    make_merchant: Callable[..., Merchant],
    make_intent: Callable[..., PaymentIntent],
    session: Session,
) -> None:
    merchant = make_merchant(1)
    intent = make_intent(merchant, 50_000)
    ref = intent.reference
    described = f"MBVCB.3312.{ref[:5].lower()} {ref[5:]}.thanh toan"
    resp = bank.chopay(chopay_body(description=described, account_number="1234567"))
    assert resp.status_code == 201, resp.get_json()
    out = resp.get_json()
    assert out["success"] is True
    assert out["status"] == "recorded"
    assert out["duplicate"] is False
    payment = out["payment"]
    assert payment["reference"] == ref
    assert payment["kind"] == "intent"
    assert payment["flag"] is None
    assert payment["merchant"] == merchant.public_id
    assert payment["amount"] == 50_000
    assert session.get(PaymentIntent, intent.id).status == "paid"  # type: ignore[union-attr]
    tx = session.scalar(
        sa.select(Transaction).where(Transaction.idempotency_key == ledger_key("bank-a", "FT26335000001"))
    )
    assert tx is not None
    assert tx.id == int(payment["ledger_transaction"][3:])


@pytest.mark.parametrize(("amount", "status"), [(40_000, "underpaid"), (60_000, "overpaid")])
def test_a_different_amount_flags_the_intent(
    bank: Bank,
    make_merchant: Callable[..., Merchant],
    make_intent: Callable[..., PaymentIntent],
    session: Session,
    amount: int,
    status: str,
) -> None:
    intent = make_intent(make_merchant(1), 50_000)
    resp = bank.chopay(chopay_body(description=f"TT {intent.reference}", amount=amount))
    assert resp.status_code == 201
    assert resp.get_json()["payment"]["flag"] == status
    found = session.get(PaymentIntent, intent.id)
    assert found is not None
    assert found.status == status
    assert found.paid_amount == amount


def test_no_reference_pays_the_merchant_owning_the_account(
    bank: Bank, make_merchant: Callable[..., Merchant]
) -> None:
    merchant = make_merchant(7)
    resp = bank.chopay(chopay_body(account_number=merchant.account_number, description="mua rau"))
    assert resp.status_code == 201
    payment = resp.get_json()["payment"]
    assert payment["kind"] == "static"
    assert payment["reference"] is None
    assert payment["merchant"] == merchant.public_id


def test_no_merchant_is_kept_unassigned_then_assigned_by_an_officer(
    bank: Bank, make_merchant: Callable[..., Merchant], client: Any, officer: dict[str, str], session: Session
) -> None:
    resp = bank.chopay(chopay_body(account_number="5550001", description="chuyen tien"))
    assert resp.status_code == 202
    out = resp.get_json()
    assert out["status"] == "unassigned"
    assert out["payment"] is None
    assert _counts(session) == (1, 0, 0)
    listed = client.get("/v1/bank-notifications?status=unassigned", headers=officer).get_json()
    assert [n["id"] for n in listed["items"]] == [out["notification"]]
    assert listed["items"][0]["account_number"] == "****0001"
    merchant = make_merchant(3)
    assigned = client.post(
        f"/v1/bank-notifications/{out['notification']}/assign",
        json={"merchant": merchant.public_id},
        headers=officer,
    )
    assert assigned.status_code == 201, assigned.get_json()
    assert assigned.get_json()["kind"] == "assigned"
    assert _counts(session) == (1, 1, 1)
    again = client.post(
        f"/v1/bank-notifications/{out['notification']}/assign",
        json={"merchant": merchant.public_id},
        headers=officer,
    )
    assert again.status_code == 409
    assert again.get_json()["code"] == "notification_not_unassigned"
    # The redelivery now answers with the payment the officer recorded.
    replay = bank.chopay(chopay_body(account_number="5550001", description="chuyen tien"))
    assert replay.status_code == 200
    assert replay.get_json()["payment"]["kind"] == "assigned"


def test_a_redelivery_returns_the_original_payment_and_posts_nothing(
    bank: Bank, make_merchant: Callable[..., Merchant], session: Session
) -> None:
    merchant = make_merchant(1)
    body = chopay_body(account_number=merchant.account_number)
    first = bank.chopay(body)
    second = bank.chopay(body, timestamp=None)
    assert first.status_code == 201
    assert second.status_code == 200
    assert second.get_json()["duplicate"] is True
    assert second.get_json()["payment"] == first.get_json()["payment"]
    assert _counts(session) == (1, 1, 1)


def test_a_reused_id_with_another_body_is_a_conflict_kept_for_review(
    bank: Bank, make_merchant: Callable[..., Merchant], session: Session, client: Any, officer: dict[str, str]
) -> None:
    merchant = make_merchant(1)
    assert bank.chopay(chopay_body(account_number=merchant.account_number)).status_code == 201
    other = bank.chopay(chopay_body(account_number=merchant.account_number, amount=99_000))
    assert other.status_code == 409
    problem = other.get_json()
    assert problem["code"] == "notification_conflict"
    assert problem["notification"] >= 1
    assert _counts(session) == (1, 1, 1)
    kept = session.scalars(sa.select(NotificationConflict)).all()
    assert len(kept) == 1
    assert "99000" not in kept[0].body
    listed = client.get("/v1/bank-notifications/conflicts", headers=officer).get_json()
    assert [c["notification"] for c in listed["items"]] == [problem["notification"]]


def test_sepay_answers_success_and_ignores_debits(
    bank: Bank, make_merchant: Callable[..., Merchant], session: Session
) -> None:
    merchant = make_merchant(1)
    resp = bank.sepay(sepay_body(accountNumber=merchant.account_number))
    assert resp.status_code == 201
    assert resp.get_json()["success"] is True
    assert resp.get_json()["payment"]["bank_txn_id"] == "FT26335000002"
    out = bank.sepay(sepay_body(id=92705, transferType="out", accountNumber=merchant.account_number))
    assert out.status_code == 200
    assert out.get_json() | {"notification": 0} == {
        "success": True,
        "status": "ignored",
        "duplicate": False,
        "notification": 0,
        "payment": None,
    }
    assert _counts(session) == (2, 1, 1)
    unassigned = bank.sepay(sepay_body(id=92706, accountNumber="4440001"))
    assert unassigned.status_code == 201
    assert unassigned.get_json()["status"] == "unassigned"


def test_sepay_code_field_counts_as_a_reference(
    bank: Bank, make_merchant: Callable[..., Merchant], make_intent: Callable[..., PaymentIntent]
) -> None:
    intent = make_intent(make_merchant(1), 50_000)
    resp = bank.sepay(sepay_body(code=intent.reference, content="chuyen khoan", accountNumber="1"))
    assert resp.status_code == 201
    assert resp.get_json()["payment"]["reference"] == intent.reference


def test_payos_verified_with_the_checksum_key(
    bank: Bank, make_merchant: Callable[..., Merchant], make_intent: Callable[..., PaymentIntent]
) -> None:
    merchant = make_merchant(1)
    intent = make_intent(merchant, 50_000)
    resp = bank.payos(payos_data(description=f"{intent.reference} thanh toan"))
    assert resp.status_code == 201, resp.get_json()
    assert resp.get_json()["payment"]["reference"] == intent.reference
    static = bank.payos(payos_data(reference="FT26335000009", accountNumber=merchant.account_number))
    assert static.status_code == 201
    assert static.get_json()["payment"]["kind"] == "static"
    bad = bank.payos(payos_data(reference="FT26335000010"), key="another-checksum-key")
    assert bad.status_code == 401
    assert bad.get_json()["code"] == "signature_invalid"


@pytest.mark.parametrize(
    ("send", "code"),
    [
        (
            lambda b: b.client.post(
                "/v1/bank-notifications",
                data=chopay_body(),
                headers={"Content-Type": "application/json", "X-Chopay-Connector": "bank-a"},
            ),
            "signature_missing",
        ),
        (
            lambda b: b.client.post(
                "/v1/bank-notifications", data=chopay_body(), headers={"Content-Type": "application/json"}
            ),
            "connector_unknown",
        ),
        (lambda b: b.chopay(chopay_body(), connector="nobody"), "connector_unknown"),
        (lambda b: b.chopay(chopay_body(), secret="whsec_wrong_secret"), "signature_invalid"),
        (lambda b: b.chopay(chopay_body(), timestamp=1_000_000_000), "signature_expired"),
        (
            lambda b: b.client.post(
                "/v1/bank-notifications",
                data=chopay_body(),
                headers={
                    "Content-Type": "application/json",
                    "X-Chopay-Connector": "bank-a",
                    "X-Chopay-Signature": "v1=abc",
                },
            ),
            "signature_malformed",
        ),
        (lambda b: b.sepay(sepay_body(), key="spk_wrong_key"), "signature_invalid"),
        (
            lambda b: b.client.post(
                "/v1/bank-notifications/sepay/sepay-a",
                data=sepay_body(),
                headers={"Content-Type": "application/json"},
            ),
            "signature_missing",
        ),
        (lambda b: b.sepay(sepay_body(), connector="payos-a"), "connector_unknown"),
        (
            lambda b: b.client.post(
                "/v1/bank-notifications/payos/payos-a",
                data=json.dumps({"code": "00", "desc": "", "success": True, "data": payos_data()}),
                headers={"Content-Type": "application/json"},
            ),
            "signature_missing",
        ),
    ],
)
def test_bad_or_missing_signatures_get_401_and_write_nothing(
    bank: Bank, session: Session, send: Callable[[Bank], Any], code: str
) -> None:
    resp = send(bank)
    assert resp.status_code == 401, resp.get_json()
    assert resp.get_json()["code"] == code
    assert resp.mimetype == "application/problem+json"
    assert _counts(session) == (0, 0, 0)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (chopay_body(amount=0), "amount"),
        (chopay_body(amount=-5), "amount"),
        (chopay_body(amount=10**13), "amount"),
        (chopay_body(amount="50000"), "amount"),
        (chopay_body(bin="97043"), "bin"),
        (chopay_body(description=None), "description"),
        (chopay_body(bank_txn_id="FT 1"), "bank_txn_id"),
        (chopay_body(occurred_at="2026-12-01T09:30:00"), "occurred_at"),
        (chopay_body(occurred_at="1999-12-31T23:00:00+00:00"), "occurred_at"),
        (chopay_body(extra=1), "extra"),
        (chopay_body(account_number=...), "account_number"),
    ],
)
def test_bad_fields_get_a_precise_422_and_write_nothing(
    bank: Bank, session: Session, body: bytes, field: str
) -> None:
    resp = bank.chopay(body)
    assert resp.status_code == 422, resp.get_json()
    problem = resp.get_json()
    assert problem["code"] == "payload_malformed"
    assert list(problem["errors"]["json"]) == [field]
    assert _counts(session) == (0, 0, 0)


def test_a_body_that_is_not_json_is_a_400(bank: Bank, session: Session) -> None:
    resp = bank.chopay(b"{not json")
    assert resp.status_code == 400
    assert _counts(session) == (0, 0, 0)


def test_a_rotated_secret_and_the_previous_one_are_both_live(
    app: Flask, client: Any, session: Session
) -> None:
    from chopay.crypto import data_keys
    from merchants.intake import connectors
    from payments.rails import webhooks as wh

    with app.app_context():
        keys = data_keys(app)
        first = connectors.add(session, keys, name="bank-db", fmt="chopay")
        session.commit()
        second = connectors.rotate(session, keys, "bank-db")
        session.commit()
    for n, secret in enumerate([first.secret, second.secret]):
        body = chopay_body(bank_txn_id=f"FT9{n}", account_number="123456")
        resp = client.post(
            "/v1/bank-notifications", data=body, headers=wh.chopay_headers("bank-db", body, secret)
        )
        assert resp.status_code == 202, resp.get_json()
    with app.app_context():
        connectors.rotate(session, keys, "bank-db", grace=__import__("datetime").timedelta(0))
        session.commit()
    body = chopay_body(bank_txn_id="FT99", account_number="123456")
    resp = client.post(
        "/v1/bank-notifications", data=body, headers=wh.chopay_headers("bank-db", body, second.secret)
    )
    assert resp.status_code == 401


def test_unknown_bin_of_a_notification_is_kept_unassigned(
    bank: Bank, make_merchant: Callable[..., Merchant]
) -> None:
    merchant = make_merchant(1)
    resp = bank.chopay(chopay_body(bin="970415", account_number=merchant.account_number))
    assert resp.status_code == 202
    assert BIN != "970415"


def test_only_an_active_merchant_is_paid_by_account_and_the_account_is_compared_upper_case(
    bank: Bank, make_merchant: Callable[..., Merchant], app: Flask, session: Session
) -> None:
    from chopay.db import get_db
    from merchants.services import registry

    active = make_merchant(4, account_number="ABC123456")
    suspended = make_merchant(5)
    with app.app_context(), get_db(app).unit_of_work() as s:
        found = s.get(Merchant, suspended.id)
        assert found is not None
        registry.change_status(s, found, "suspended", reason="kiểm tra")

    paid = bank.chopay(chopay_body(bank_txn_id="FT1", account_number="abc123456", description="mua rau"))
    assert paid.status_code == 201, paid.get_json()
    assert paid.get_json()["payment"]["merchant"] == active.public_id
    kept = bank.chopay(chopay_body(bank_txn_id="FT2", account_number=suspended.account_number))
    assert kept.status_code == 202
    assert kept.get_json()["status"] == "unassigned"
    status = sa.select(BankNotification.status).where(BankNotification.bank_txn_id == "FT2")
    assert session.scalar(status) == "unassigned"
    assert _counts(session) == (2, 1, 1)


def test_the_intake_answer_is_what_its_documented_schema_dumps(
    bank: Bank, make_merchant: Callable[..., Merchant], app: Flask
) -> None:
    from merchants.intake.schemas import IntakeOut

    merchant = make_merchant(2)
    answer = bank.chopay(chopay_body(account_number=merchant.account_number)).get_json()
    assert IntakeOut().dump(IntakeOut().load(answer)) == answer
    assert answer["payment"]["occurred_at"] == "2026-12-01T02:30:00+00:00"
    assert answer["payment"]["recorded_at"].endswith("+00:00")


@pytest.mark.parametrize(
    ("data", "envelope", "reported"),
    [
        ({"code": "01", "desc": "Giao dịch thất bại"}, {}, "01: Giao dịch thất bại"),
        ({}, {"code": "14", "desc": "Hết hạn"}, "14: Hết hạn"),
        ({}, {"success": False}, "00: success (success: false)"),
    ],
)
def test_a_payos_payment_reported_as_failed_is_acknowledged_and_kept_not_paid(
    bank: Bank,
    make_merchant: Callable[..., Merchant],
    make_intent: Callable[..., PaymentIntent],
    session: Session,
    client: Any,
    officer: dict[str, str],
    data: dict[str, str],
    envelope: dict[str, Any],
    reported: str,
) -> None:
    merchant = make_merchant(1)
    intent = make_intent(merchant, 50_000)
    failed = payos_data(accountNumber=merchant.account_number, description=f"{intent.reference} thanh toan")
    resp = bank.payos({**failed, **data}, **envelope)
    assert resp.status_code == 200, resp.get_json()
    answer = resp.get_json()
    assert answer["success"] is True  # what payOS waits for before it stops retrying
    assert answer["status"] == "ignored"
    assert answer["payment"] is None
    assert _counts(session) == (1, 0, 0)
    assert session.scalar(sa.select(PaymentIntent.status).where(PaymentIntent.id == intent.id)) == "open"
    kept = client.get(f"/v1/bank-notifications/{answer['notification']}", headers=officer).get_json()
    assert kept["status"] == "ignored"
    assert kept["sender_status"] == reported
    assert kept["payment"] is None
    again = bank.payos({**failed, **data}, **envelope)
    assert again.status_code == 200
    assert again.get_json()["duplicate"] is True
    assert _counts(session) == (1, 0, 0)


def test_a_payos_reference_reported_failed_then_paid_is_a_conflict_not_a_payment(
    bank: Bank, make_merchant: Callable[..., Merchant], session: Session
) -> None:
    merchant = make_merchant(1)
    data = payos_data(accountNumber=merchant.account_number)
    assert bank.payos({**data, "code": "01", "desc": "Giao dịch thất bại"}).status_code == 200
    paid = bank.payos(data)
    assert paid.status_code == 409
    assert paid.get_json()["code"] == "notification_conflict"
    assert _counts(session) == (1, 0, 0)

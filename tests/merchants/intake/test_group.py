"""Deliveries recorded together (group commit): each keeps the outcome it would have had alone."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from flask import Flask
from sqlalchemy.orm import Session

from chopay.crypto import data_keys
from chopay.db import get_db
from chopay.group import Waiting
from merchants.intake import connectors, formats, group, services
from merchants.intake.ledger import bank_account
from merchants.intake.models import BankNotification, Payment
from merchants.models import Merchant, PaymentIntent
from merchants.services import registry
from payments.ledger import services as ledger
from payments.ledger.models import Transaction
from payments.rails import webhooks as wh
from tests.merchants.conftest import vendor
from tests.merchants.intake.conftest import CHOPAY_SECRET, SEPAY_KEY, chopay_body, sepay_body
from tests.merchants.intake.served import committing_app, serving

pytestmark = pytest.mark.postgresql_only


def _chopay(app: Flask, published: list[services.PaymentEvent], **fields: object) -> services.Delivery:
    body = chopay_body(**fields)
    signature = wh.chopay_headers("bank-a", body, CHOPAY_SECRET)[wh.SIGNATURE_HEADER]
    incoming = formats.chopay(connectors.declared(app)["bank-a"], body, signature)
    return services.Delivery(incoming, body, data_keys(app), published.append)


def _sepay(app: Flask, published: list[services.PaymentEvent], **fields: object) -> services.Delivery:
    body = sepay_body(**fields)
    incoming = formats.sepay(connectors.declared(app)["sepay-a"], body, f"Apikey {SEPAY_KEY}")
    return services.Delivery(incoming, body, data_keys(app), published.append)


def test_a_mixed_group_gives_each_delivery_its_own_outcome(
    app: Flask,
    session: Session,
    make_merchant: Callable[..., Merchant],
    make_intent: Callable[..., PaymentIntent],
) -> None:
    first, second = make_merchant(1), make_merchant(2)
    intent = make_intent(first, 70_000)
    published: list[services.PaymentEvent] = []

    def paying(txn: str, merchant: int, amount: int, **fields: object) -> services.Delivery:
        return _chopay(
            app,
            published,
            bank_txn_id=txn,
            account_number=f"{9_000_000_000 + merchant}",
            amount=amount,
            **fields,
        )

    deliveries = [
        paying("G-1", 1, 10_000),
        paying("G-2", 2, 20_000),  # the second merchant's first payment: its accounts are opened
        paying("G-1", 1, 10_000),  # the same notification again, in the same group
        paying("G-1", 1, 99_000),  # the same id with other content
        paying("G-3", 1, 70_000, description=f"TT {intent.reference}"),
        paying("G-4", 9, 40_000),  # nobody's account
        _sepay(app, published, id=555, transferType="out"),  # a debit
        paying("G-5", 1, 5_000),
    ]
    with get_db(app).unit_of_work() as s:
        out = services.record_many(s, deliveries)

    assert len(out) == len(deliveries)
    one, two, again, reused, paid_intent, nobody, debit, five = out
    assert isinstance(one, services.Outcome)
    assert one.status == "recorded"
    assert not one.duplicate
    assert isinstance(two, services.Outcome)
    assert two.merchant == second.public_id
    assert isinstance(again, services.Outcome)
    assert again.duplicate
    assert again.notification_id == one.notification_id
    assert again.payment is not None
    assert one.payment is not None
    assert again.payment.id == one.payment.id
    assert isinstance(reused, services.ReusedId)
    assert reused.notification_id == one.notification_id
    assert isinstance(paid_intent, services.Outcome)
    assert paid_intent.payment is not None
    assert paid_intent.payment.reference == intent.reference
    assert paid_intent.payment.kind == "intent"
    assert isinstance(nobody, services.Outcome)
    assert nobody.status == "unassigned"
    assert nobody.payment is None
    assert isinstance(debit, services.Outcome)
    assert debit.status == "ignored"
    assert debit.payment is None
    assert isinstance(five, services.Outcome)
    assert five.payment is not None

    session.expire_all()
    statuses = {n.bank_txn_id: n.status for n in session.scalars(sa.select(BankNotification))}
    assert statuses == {
        "G-1": "recorded",
        "G-2": "recorded",
        "G-3": "recorded",
        "G-4": "unassigned",
        "FT26335000002": "ignored",
        "G-5": "recorded",
    }
    payments = list(session.scalars(sa.select(Payment).order_by(Payment.bank_txn_id)))
    assert [(p.bank_txn_id, p.amount, p.merchant_id) for p in payments] == [
        ("G-1", 10_000, first.id),
        ("G-2", 20_000, second.id),
        ("G-3", 70_000, first.id),
        ("G-5", 5_000, first.id),
    ]
    for p in payments:  # each payment names its own ledger transaction, of its own amount
        tx = session.get(Transaction, p.ledger_tx_id)
        assert tx is not None
        assert tx.meta["bank_txn_id"] == p.bank_txn_id
    assert ledger.balance(session, bank_account(first.public_id)) == 85_000
    assert ledger.balance(session, bank_account(second.public_id)) == 20_000
    assert session.get(PaymentIntent, intent.id).status == "paid"  # type: ignore[union-attr]
    # Every payment is announced once, after the commit.
    assert sorted(e.payment_id for e in published) == sorted(p.id for p in payments)


def test_a_group_whose_transaction_fails_records_each_delivery_alone(
    app: Flask, session: Session, make_merchant: Callable[..., Merchant], monkeypatch: pytest.MonkeyPatch
) -> None:
    make_merchant(1)
    published: list[services.PaymentEvent] = []
    intake = group.IntakeGroup(get_db(app))
    waiting = [
        Waiting(_chopay(app, published, bank_txn_id="F-1")),
        Waiting(_chopay(app, published, bank_txn_id="F-1", amount=1)),  # a reused id: refused alone
    ]
    intake._queue.extend(waiting)  # as if these threads waited while another group committed

    def broken(s: Session, deliveries: list[services.Delivery]) -> list[object]:
        s.execute(sa.text("SELECT 1"))
        raise RuntimeError("the group's statement failed")

    monkeypatch.setattr(services, "record_many", broken)
    mine = intake.submit(_chopay(app, published, bank_txn_id="F-2"))

    assert mine.status == "recorded"
    assert mine.payment is not None
    assert isinstance(waiting[0].result, services.Outcome)
    assert waiting[0].result.status == "recorded"
    assert isinstance(waiting[1].error, services.ReusedId)
    session.expire_all()
    assert sorted(session.scalars(sa.select(Payment.bank_txn_id))) == ["F-1", "F-2"]
    assert len(published) == 2


def test_concurrent_deliveries_over_http_share_commits_and_each_pays_once(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sizes: list[int] = []
    original = group.IntakeGroup.run_group

    def counting(self: group.IntakeGroup, s: Session, deliveries: list[services.Delivery]) -> list[object]:
        sizes.append(len(deliveries))
        return list(original(self, s, deliveries))

    monkeypatch.setattr(group.IntakeGroup, "run_group", counting)
    clients, per_client = 16, 10
    with committing_app(database_url, tmp_path) as app, serving(app) as base:
        with app.app_context(), get_db(app).unit_of_work() as s:
            merchant = registry.create(s, data_keys(app), vendor(1))
        start = threading.Barrier(clients)
        answers: list[int] = []
        lock = threading.Lock()

        def deliver(c: int) -> None:
            with httpx.Client(base_url=base, timeout=60) as client:
                start.wait()
                for i in range(per_client):
                    body = chopay_body(bank_txn_id=f"C-{c}-{i}", amount=1_000 + c)
                    headers = wh.chopay_headers("bank-a", body, CHOPAY_SECRET)
                    resp = client.post("/v1/bank-notifications", content=body, headers=headers)
                    with lock:
                        answers.append(resp.status_code)

        threads = [threading.Thread(target=deliver, args=(c,)) for c in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert answers == [201] * (clients * per_client)
        with get_db(app).read_session() as s:
            assert s.scalar(sa.select(sa.func.count()).select_from(Payment)) == clients * per_client
            assert ledger.balance(s, bank_account(merchant.public_id)) == sum(
                (1_000 + c) * per_client for c in range(clients)
            )
    assert sum(sizes) == clients * per_client  # no delivery went around the group
    assert max(sizes) > 1  # and some committed together

"""Fifty concurrent redeliveries over real HTTP: one payment, one ledger transaction."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from chopay.crypto import data_keys
from chopay.db import get_db
from merchants.intake.models import BankNotification, Payment
from merchants.models import PaymentIntent
from merchants.services import intents, registry
from payments.ledger.models import Transaction
from payments.rails import webhooks as wh
from tests.merchants.conftest import vendor
from tests.merchants.intake.conftest import CHOPAY_SECRET, SEPAY_KEY, chopay_body, sepay_body
from tests.merchants.intake.served import committing_app, serving

STORM = 50


@pytest.mark.parametrize("fmt", ["chopay", "sepay"])
def test_a_storm_of_redeliveries_records_one_payment(database_url: str, tmp_path: Path, fmt: str) -> None:
    with committing_app(database_url, tmp_path) as app, serving(app) as base:
        with app.app_context(), get_db(app).unit_of_work() as s:
            merchant = registry.create(s, data_keys(app), vendor(1))
            intent = intents.create_intent(s, merchant, amount=50_000)
        if fmt == "chopay":
            body = chopay_body(description=f"TT {intent.reference}")
            path, headers = "/v1/bank-notifications", wh.chopay_headers("bank-a", body, CHOPAY_SECRET)
        else:
            body = sepay_body(content=f"TT {intent.reference}")
            path, headers = "/v1/bank-notifications/sepay/sepay-a", wh.sepay_headers(SEPAY_KEY)
        start = threading.Barrier(STORM)
        answers: list[tuple[int, dict[str, object]]] = []
        lock = threading.Lock()

        def deliver() -> None:
            with httpx.Client(base_url=base, timeout=60) as client:
                start.wait()
                resp = client.post(path, content=body, headers=headers)
            with lock:
                answers.append((resp.status_code, resp.json()))

        threads = [threading.Thread(target=deliver) for _ in range(STORM)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        statuses = sorted(code for code, _ in answers)
        assert statuses == [200] * (STORM - 1) + [201], answers[:2]
        payments = {str(out["payment"]) for _, out in answers}
        assert len(payments) == 1  # every answer names the same payment
        with get_db(app).read_session() as s:
            assert s.scalar(sa.select(sa.func.count()).select_from(BankNotification)) == 1
            assert s.scalar(sa.select(sa.func.count()).select_from(Payment)) == 1
            kinds = s.scalars(sa.select(Transaction.kind)).all()
            assert kinds.count("merchant.payment") == 1
            found = s.get(PaymentIntent, intent.id)
            assert found is not None
            assert found.status == "paid"

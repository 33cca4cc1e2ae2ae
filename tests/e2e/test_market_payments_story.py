"""A market's cashless day, end to end on PostgreSQL and Redis, with the bank simulator paying.

The market board registers vendors and prints a stall's QR; a vendor shows three dynamic QRs;
the simulator (a separate process with its own database) pays each one and notifies chopay in
each of the three formats, once with a duplicate; the vendor's phone hears every payment on its
live stream, the intents are paid, the day's statement adds up, and every payment has its
ledger transaction with the references reconciliation needs.
"""

from __future__ import annotations

import io
import json
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import zxingcpp
from PIL import Image

from chopay.db import get_db
from chopay.users import create_user
from payments.rails.fakebank.process import Simulator
from tests.merchants.conftest import vendor
from tests.merchants.intake.conftest import CHOPAY_SECRET, PAYOS_KEY, SEPAY_KEY
from tests.merchants.intake.served import committing_app, serving
from tests.merchants.intake.test_events import _read_events


def _wait(predicate: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("the condition did not hold in time")


@pytest.mark.postgresql_only
def test_a_market_day(database_url: str, redis_url: str, tmp_path: Path) -> None:
    with committing_app(database_url, tmp_path, redis_url=redis_url) as app, serving(app) as base:
        with get_db(app).unit_of_work() as s:
            officer = create_user(s, name="Test officer", role="officer").token
        board = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {officer}"}, timeout=30)
        # 1. The market board registers two vendors.
        created = [board.post("/v1/merchants", json=vendor(n)) for n in (1, 2)]
        assert [r.status_code for r in created] == [201, 201], created[0].text
        stall = created[0].json()
        with get_db(app).unit_of_work() as s:
            token = create_user(
                s, name="Test vendor", role="merchant", merchant_id=_pk(app, stall["id"])
            ).token
        phone = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30)
        # 2. The stall's printed QR decodes to the vendor's account.
        png = board.get(f"/v1/merchants/{stall['id']}/qr?format=png")
        assert png.status_code == 200
        decoded = zxingcpp.read_barcodes(Image.open(io.BytesIO(png.content)))
        assert decoded
        assert vendor(1)["account_number"] in decoded[0].text
        # 3. The vendor shows three dynamic QRs.
        amounts = [35_000, 120_000, 8_000]
        intents = []
        for amount in amounts:
            made = phone.post(
                f"/v1/merchants/{stall['id']}/payment-intents", json={"amount": amount, "memo": "rau"}
            )
            assert made.status_code == 201, made.text
            intents.append(made.json())
        # The vendor's phone listens.
        heard: list[dict[str, Any]] = []
        listening = threading.Event()

        def listen() -> None:
            with httpx.stream(
                "GET", f"{base}/v1/merchants/{stall['id']}/events", headers=phone.headers, timeout=60
            ) as resp:
                listening.set()
                heard.extend(_read_events(resp.iter_lines(), len(amounts)))

        listener = threading.Thread(target=listen)
        listener.start()
        assert listening.wait(10)
        _wait(lambda: app.extensions["chopay.events"].open_streams == 1)
        # 4. The bank simulator pays each intent, notifying in each format (chopay twice).
        connectors = [
            f"bank-a=chopay:{CHOPAY_SECRET}",
            f"sepay-a=sepay:{SEPAY_KEY}",
            f"payos-a=payos:{PAYOS_KEY}",
        ]
        args = ["--notify-url", base, "--retry-base-ms", "100"]
        for c in connectors:
            args += ["--connector", c]
        with Simulator.start(tmp_path, *args) as bank:
            for intent, fmt in zip(intents, ["chopay", "sepay", "payos"], strict=True):
                paid = httpx.post(
                    bank.url + "/admin/pay",
                    json={
                        "to_bin": stall["bin"],
                        "to_account": vendor(1)["account_number"],
                        "amount": intent["amount"],
                        "memo": f"MBVCB.3312.{intent['reference']}.thanh toan",
                        "format": fmt,
                        "duplicate": 1 if fmt == "chopay" else 0,
                    },
                    timeout=30,
                )
                assert paid.status_code == 201, paid.text
            # 5. Every intent becomes paid.
            for intent in intents:
                url = f"/v1/merchants/{stall['id']}/payment-intents/{intent['id']}"
                _wait(lambda url=url: phone.get(url).json()["status"] == "paid")
            _wait(lambda: all(d["status"] == "delivered" for d in _deliveries(bank)))
        listener.join(timeout=30)
        # 6. The phone heard each payment once, with amount, time and reference.
        events = [json.loads(e["data"]) for e in heard]
        assert sorted(e["amount"] for e in events) == sorted(amounts)
        assert {e["reference"] for e in events} == {i["reference"] for i in intents}
        assert all(e["occurred_at"] for e in events)
        # 7. The day's statement adds up (Vietnam day of the payments).
        day = events[0]["occurred_at"]
        statement = phone.get(
            f"/v1/merchants/{stall['id']}/statement", params={"date": _vietnam_day(day)}
        ).json()
        assert statement["count"] == 3
        assert statement["total"] == sum(amounts)
        # 8. Each payment has its ledger transaction, with the references reconciliation needs.
        with get_db(app).unit_of_work() as s:
            admin = create_user(s, name="Test auditor", role="auditor").token
        auditor = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {admin}"}, timeout=30)
        for payment in statement["payments"]:
            tx = auditor.get(f"/v1/ledger/transactions/{payment['ledger_transaction']}")
            assert tx.status_code == 200, tx.text
            body = tx.json()
            assert body["metadata"]["merchant"] == stall["id"]
            assert body["metadata"]["intent"] == payment["reference"]
            assert body["metadata"]["bank_txn_id"] == payment["bank_txn_id"]
            assert body["metadata"]["connector"] == payment["connector"]
            assert sorted(p["amount"] for p in body["postings"]) == [-payment["amount"], payment["amount"]]
        notifications = board.get("/v1/bank-notifications").json()["items"]
        assert len(notifications) == 3  # the duplicate delivery recorded nothing new
        assert {n["format"] for n in notifications} == {"chopay", "sepay", "payos"}


def _pk(app: Any, public_id: str) -> int:
    from merchants.models import Merchant

    with get_db(app).read_session() as s:
        from sqlalchemy import select

        found = s.scalar(select(Merchant.id).where(Merchant.public_id == public_id))
    assert found is not None
    return int(found)


def _deliveries(bank: Simulator) -> list[dict[str, Any]]:
    with bank.admin() as client:
        found: list[dict[str, Any]] = client.get("/admin/notifications").json()
    return found


def _vietnam_day(iso: str) -> str:
    import datetime as dt

    from payments.rails.webhooks import VIETNAM

    return dt.datetime.fromisoformat(iso).astimezone(VIETNAM).date().isoformat()

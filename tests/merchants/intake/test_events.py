"""Live payment events over a real HTTP connection, in-process and through Redis pub/sub."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from chopay.crypto import data_keys
from chopay.db import get_db
from chopay.users import create_user
from merchants.intake import events
from merchants.services import registry
from payments.rails import webhooks as wh
from tests.merchants.conftest import vendor
from tests.merchants.intake.conftest import CHOPAY_SECRET, chopay_body
from tests.merchants.intake.served import committing_app, serving


def _read_events(lines: Iterator[str], count: int) -> list[dict[str, Any]]:
    """Read SSE lines until ``count`` events have arrived."""
    found: list[dict[str, Any]] = []
    current: dict[str, Any] = {}
    for line in lines:
        if line == "":
            if "data" in current:
                found.append(current)
                if len(found) == count:
                    return found
            current = {}
        elif not line.startswith(":"):
            key, _, value = line.partition(": ")
            current[key] = value
    return found


def _pay(base: str, account: str, txn: str, amount: int = 25_000) -> int:
    body = chopay_body(bank_txn_id=txn, account_number=account, amount=amount)
    resp = httpx.post(
        base + "/v1/bank-notifications",
        content=body,
        headers=wh.chopay_headers("bank-a", body, CHOPAY_SECRET),
    )
    assert resp.status_code == 201, resp.text
    payment_id: int = resp.json()["payment"]["id"]
    return payment_id


@pytest.mark.parametrize("through", ["process", "redis"])
def test_a_vendor_phone_hears_its_payments_and_replays_missed_ones(
    database_url: str, tmp_path: Path, request: pytest.FixtureRequest, through: str
) -> None:
    extra: dict[str, Any] = {}
    if through == "redis":
        extra = {"redis_url": request.getfixturevalue("redis_url")}
    with committing_app(database_url, tmp_path, **extra) as app, serving(app) as base:
        with app.app_context(), get_db(app).unit_of_work() as s:
            merchant = registry.create(s, data_keys(app), vendor(1))
            other = registry.create(s, data_keys(app), vendor(2))
            token = create_user(s, name="Test vendor", role="merchant", merchant_id=merchant.id).token
        headers = {"Authorization": f"Bearer {token}"}
        url = f"{base}/v1/merchants/{merchant.public_id}/events"
        received: list[dict[str, Any]] = []
        opened = threading.Event()

        def listen() -> None:
            with httpx.stream("GET", url, headers=headers, timeout=20) as resp:
                assert resp.status_code == 200
                assert resp.headers["content-type"].startswith("text/event-stream")
                opened.set()
                received.extend(_read_events(resp.iter_lines(), 2))

        listener = threading.Thread(target=listen)
        listener.start()
        assert opened.wait(10)
        bus = events.bus(app)
        # Wait until the stream has subscribed (the response starts before the first event).
        for _ in range(200):
            if bus.open_streams:
                break
            threading.Event().wait(0.05)
        first = _pay(base, other.account_number, "FT1")  # another vendor's: not on this stream
        second = _pay(base, merchant.account_number, "FT2", 25_000)
        third = _pay(base, merchant.account_number, "FT3", 30_000)
        listener.join(timeout=20)
        assert [int(e["id"]) for e in received] == [second, third]
        assert {e["event"] for e in received} == {"payment.received"}
        data = json.loads(received[0]["data"])
        assert data["amount"] == 25_000
        assert data["reference"] is None
        assert data["occurred_at"].startswith("2026-12-01T02:30:00")
        assert first not in [int(e["id"]) for e in received]
        # A phone that lost the connection after the first event gets the rest replayed.
        with httpx.stream("GET", url, headers={**headers, "Last-Event-ID": str(second)}, timeout=20) as resp:
            replayed = _read_events(resp.iter_lines(), 1)
        assert [int(e["id"]) for e in replayed] == [third]


def test_a_thread_per_connection_process_refuses_streams_beyond_its_share(
    database_url: str, tmp_path: Path
) -> None:
    with committing_app(database_url, tmp_path, events_max_streams=1) as app, serving(app) as base:
        with app.app_context(), get_db(app).unit_of_work() as s:
            merchant = registry.create(s, data_keys(app), vendor(1))
            token = create_user(s, name="Test vendor", role="merchant", merchant_id=merchant.id).token
        headers = {"Authorization": f"Bearer {token}"}
        url = f"{base}/v1/merchants/{merchant.public_id}/events"
        with httpx.stream("GET", url, headers=headers, timeout=20) as first:
            assert first.status_code == 200
            second = httpx.get(url, headers=headers, timeout=20)
            assert second.status_code == 503
            assert second.json()["code"] == "streams_exhausted"
        bad = httpx.get(url, headers={**headers, "Last-Event-ID": "x1"}, timeout=20)
        assert bad.status_code == 400
        assert bad.json()["code"] == "last_event_id_invalid"


def test_a_burst_of_events_reaches_redis_whole_and_in_order(redis_url: str) -> None:
    import datetime as dt

    from redis import Redis

    from merchants.intake.services import PaymentEvent

    pubsub = Redis.from_url(redis_url).pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(events.CHANNEL)
    assert pubsub.get_message(timeout=2) is None  # the subscription is confirmed (and ignored)
    bus = events.Bus(redis_url, max_streams=10)
    at = dt.datetime(2026, 12, 1, 2, 30, tzinfo=dt.UTC)
    for n in range(1, 301):
        bus.publish(PaymentEvent(7, n, 1000 + n, None, at, None))

    heard: list[int] = []
    while len(heard) < 300:
        message = pubsub.get_message(timeout=5)
        assert message is not None, f"only {len(heard)} of 300 events arrived"
        heard.append(json.loads(message["data"])["payment"])
    assert heard == list(range(1, 301))
    pubsub.close()

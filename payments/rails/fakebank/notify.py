"""Deliver queued notifications to chopay, retrying with backoff until acknowledged.

The running simulator owns delivery: a thread in each server process claims due outbox
rows with a lease (so several processes never post the same row at once), signs each one
at the moment of sending with the connector's current secret, and posts it. A 2xx answer
acknowledges it; anything else, or no answer, schedules another attempt after
``retry_base_ms * 2**(attempt-1)`` (capped at ``retry_max_ms``, with jitter), until
``max_attempts`` have failed and the row is marked ``failed``.

Paths: chopay ``POST {url}/v1/bank-notifications``, SePay
``POST {url}/v1/bank-notifications/sepay/{connector}``, payOS
``POST {url}/v1/bank-notifications/payos/{connector}``; ``url`` is the connector's own
or ``--notify-url``. A chopay-format notification queued with ``late_s`` is signed with
a timestamp that many seconds in the past, as if it had waited in a queue, to exercise
the receiver's 300 s window. A connector's secret may hold several secrets separated by
commas: the chopay format signs with each (rotation); the others use the first.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import random
import threading
import time
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from chopay.db import utcnow
from payments.rails import webhooks as wh
from payments.rails.fakebank.config import FakebankConfig
from payments.rails.fakebank.models import connectors, notifications

log = logging.getLogger("chopay.fakebank.notify")
LEASE = dt.timedelta(seconds=30)
PATHS = {
    "chopay": "/v1/bank-notifications",
    "sepay": "/v1/bank-notifications/sepay/{name}",
    "payos": "/v1/bank-notifications/payos/{name}",
}


def request_for(
    connector: Any, fmt: str, body: bytes, late_s: int, base_url: str
) -> tuple[str, dict[str, str], bytes]:
    """Return the URL, headers and body of one delivery attempt."""
    secrets = [s for s in connector.secret.split(",") if s]
    url = (connector.url or base_url).rstrip("/") + PATHS[fmt].format(name=connector.name)
    if fmt == "chopay":
        headers = wh.chopay_headers(connector.name, body, *secrets, timestamp=int(time.time()) - late_s)
        return url, headers, body
    if fmt == "sepay":
        return url, wh.sepay_headers(secrets[0]), body
    signed = wh.sign_payos(json.loads(body), secrets[0])
    return url, {"Content-Type": "application/json"}, signed


class Deliverer:
    """The delivery loop of one simulator process."""

    def __init__(self, engine: Engine, config: FakebankConfig, client: httpx.Client | None = None) -> None:
        self.engine = engine
        self.config = config
        self.client = client or httpx.Client(timeout=10.0)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._rng = random.Random(config.seed)

    def start(self) -> None:
        """Start delivering in a background thread."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="fakebank-notify", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop the background thread."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=15)
            self._thread = None

    def wake(self) -> None:
        """Look for due notifications now rather than at the next poll."""
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                busy = self.run_once()
            except sa.exc.OperationalError:
                log.warning("notification outbox busy; retrying", exc_info=True)
                busy = 0
            if not busy:
                self._wake.wait(0.2)
                self._wake.clear()

    def run_once(self, limit: int = 20) -> int:
        """Attempt every due notification (up to ``limit``); return how many were attempted."""
        now = utcnow()
        with self.engine.begin() as conn:
            due = [
                r.id
                for r in conn.execute(
                    sa.select(notifications.c.id)
                    .where(
                        notifications.c.status == "pending",
                        notifications.c.next_attempt_at <= now,
                        sa.or_(notifications.c.lease_until.is_(None), notifications.c.lease_until < now),
                    )
                    .order_by(notifications.c.next_attempt_at)
                    .limit(limit)
                )
            ]
            if due:
                conn.execute(
                    notifications.update().where(notifications.c.id.in_(due)).values(lease_until=now + LEASE)
                )
        for note_id in due:
            self._attempt(note_id)
        return len(due)

    def _attempt(self, note_id: int) -> None:
        with self.engine.connect().execution_options(read_only=True) as conn, conn.begin():
            note = conn.execute(sa.select(notifications).where(notifications.c.id == note_id)).one()
            connector = conn.execute(
                sa.select(connectors).where(connectors.c.name == note.connector)
            ).one_or_none()
        status: int | None = None
        error: str | None = None
        if connector is None:
            error = f"connector {note.connector!r} is no longer configured"
        else:
            url, headers, body = request_for(
                connector, note.format, note.body, note.late_s, self.config.notify_url
            )
            try:
                response = self.client.post(url, content=body, headers=headers)
                status = response.status_code
                if not response.is_success:
                    error = f"HTTP {status}: {response.text[:200]}"
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"[:300]
        self._record(note_id, note.attempts + 1, status, error)

    def _record(self, note_id: int, attempts: int, status: int | None, error: str | None) -> None:
        now = utcnow()
        values: dict[str, Any] = {
            "attempts": attempts,
            "last_status": status,
            "last_error": error,
            "lease_until": None,
        }
        if error is None:
            values.update(status="delivered", delivered_at=now)
        elif attempts >= self.config.max_attempts:
            values.update(status="failed")
            log.warning("notification %s failed after %s attempts: %s", note_id, attempts, error)
        else:
            delay_ms = min(self.config.retry_max_ms, self.config.retry_base_ms * 2 ** (attempts - 1))
            jitter = 0.5 + self._rng.random() / 2
            values["next_attempt_at"] = now + dt.timedelta(milliseconds=delay_ms * jitter)
        with self.engine.begin() as conn:
            conn.execute(notifications.update().where(notifications.c.id == note_id).values(**values))


def deliveries(engine: Engine, transfer: int | None = None) -> list[dict[str, Any]]:
    """Return the outbox rows (of one incoming transfer, or all), oldest first."""
    query = sa.select(notifications).order_by(notifications.c.id)
    if transfer is not None:
        query = query.where(notifications.c.transfer_id == transfer)
    with engine.connect().execution_options(read_only=True) as conn, conn.begin():
        return [
            {
                "id": r.id,
                "connector": r.connector,
                "format": r.format,
                "status": r.status,
                "attempts": r.attempts,
                "last_status": r.last_status,
                "last_error": r.last_error,
                "delivered_at": r.delivered_at.isoformat() if r.delivered_at else None,
            }
            for r in conn.execute(query)
        ]

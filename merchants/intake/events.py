"""Live ``payment.received`` events, and the Server-Sent Events stream of one merchant.

Publishing happens after the payment's transaction commits (:func:`chopay.db.after_commit`).
With Redis configured (``CHOPAY_REDIS_URL``) an event is published on the channel
:data:`CHANNEL`, and every process that holds streams runs one subscriber thread that hands
each event to the streams of its merchant; without Redis the event goes straight to the
streams of the process that recorded it (one host, one process: ``make run``).

A stream is ``text/event-stream``: each event has ``id:`` (the payment id, increasing per
merchant), ``event: payment.received`` and ``data:`` (JSON: payment, amount, reference,
occurred_at, flag). A client that reconnects sends ``Last-Event-ID``; the stream first replays,
from the payments table, every payment after that id (the table is the source of truth; the
bus only signals), then goes live. It subscribes before it replays, so an event that arrives
in between is not lost, and ids the replay sent are skipped. A comment line every
:data:`KEEPALIVE` seconds keeps proxies from closing an idle stream and notices a client
that has gone.

Publishing to Redis does not wait for Redis: the request thread queues the message and one
sender thread per process sends whatever has queued in one pipelined round trip, so that a
burst of payments costs one write to Redis, not one per payment. An event is a signal, not
the record: one lost with a dying process is replayed from the table on reconnection.

Streams are long and mostly idle. Under a thread-per-connection worker (``chopay serve``,
gunicorn gthread) each one would hold a thread, so such a process serves at most
``CHOPAY_EVENTS_MAX_STREAMS`` streams (503 ``streams_exhausted`` beyond). Production serves
``/v1/merchants/{id}/events`` from ``chopay events``: gunicorn with gevent workers, where a
stream is a greenlet and a few thousand cost a few megabytes (see README, "Live payment
events").
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from flask import Flask, current_app

from chopay import db
from merchants.intake.models import Payment
from merchants.intake.services import PaymentEvent

log = logging.getLogger("chopay.merchants.events")

CHANNEL = "chopay:payments"
EVENT = "payment.received"
KEEPALIVE = 15.0
REPLAY_LIMIT = 1000
QUEUE_LIMIT = 1000
SEND_BATCH = 500


def format_event(payment_id: int, data: dict[str, Any]) -> str:
    """Return one SSE message."""
    return f"id: {payment_id}\nevent: {EVENT}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def _payment_data(p: Payment) -> dict[str, Any]:
    return PaymentEvent(p.merchant_id, p.id, p.amount, p.reference, p.occurred_at, p.flag).data()


class Bus:
    """Fan events out to the streams of this process; through Redis when one is configured."""

    def __init__(self, redis_url: str | None, max_streams: int) -> None:
        self.redis_url = redis_url
        self.max_streams = max_streams
        self._lock = threading.Lock()
        self._streams: dict[int, set[queue.Queue[dict[str, Any]]]] = {}
        self._count = 0
        self._listener: threading.Thread | None = None
        self._redis: Any = None
        self._outbox: queue.SimpleQueue[str] = queue.SimpleQueue()
        self._sender: threading.Thread | None = None

    # -- publishing ---------------------------------------------------------------------------
    def publish(self, event: PaymentEvent) -> None:
        """Publish one event to every stream of its merchant, on every host."""
        message = {"merchant": event.merchant_id, **event.data()}
        if self.redis_url is None:
            self.deliver(message)
            return
        self._outbox.put(json.dumps(message))
        sender = self._sender
        if sender is None or not sender.is_alive():
            self._start_sender()

    def _start_sender(self) -> None:
        with self._lock:
            if self._sender is not None and self._sender.is_alive():
                return
            self._sender = threading.Thread(target=self._send, name="chopay-events-send", daemon=True)
            self._sender.start()

    def _send(self) -> None:
        from redis.exceptions import RedisError

        while True:
            batch = [self._outbox.get()]
            while len(batch) < SEND_BATCH:
                try:
                    batch.append(self._outbox.get_nowait())
                except queue.Empty:
                    break
            try:
                pipe = self._connection().pipeline(transaction=False)
                for message in batch:
                    pipe.publish(CHANNEL, message)
                pipe.execute()
            except (RedisError, OSError):
                # Streams that missed these catch up from the table when they reconnect.
                log.warning("payment events not published: %d dropped", len(batch), exc_info=True)

    def _connection(self) -> Any:
        if self._redis is None:
            from redis import Redis

            self._redis = Redis.from_url(str(self.redis_url), socket_timeout=5)
        return self._redis

    def deliver(self, message: dict[str, Any]) -> None:
        """Hand a message to the local streams of its merchant."""
        with self._lock:
            targets = list(self._streams.get(int(message["merchant"]), ()))
        for target in targets:
            try:
                target.put_nowait(message)
            except queue.Full:
                # A stream that cannot keep up catches up from the table when it reconnects.
                log.warning("event stream queue full; event dropped for that stream")

    # -- subscribing --------------------------------------------------------------------------
    def subscribe(self, merchant_id: int) -> queue.Queue[dict[str, Any]] | None:
        """Return a queue of the merchant's events, or None when this process is full."""
        inbox: queue.Queue[dict[str, Any]] = queue.Queue(QUEUE_LIMIT)
        with self._lock:
            if self._count >= self.max_streams:
                return None
            self._streams.setdefault(merchant_id, set()).add(inbox)
            self._count += 1
        if self.redis_url is not None:
            self._ensure_listener()
        return inbox

    def unsubscribe(self, merchant_id: int, inbox: queue.Queue[dict[str, Any]]) -> None:
        """Stop handing events to ``inbox``."""
        with self._lock:
            found = self._streams.get(merchant_id)
            if found is not None and inbox in found:
                found.discard(inbox)
                self._count -= 1
                if not found:
                    del self._streams[merchant_id]

    @property
    def open_streams(self) -> int:
        """Return how many streams this process serves now."""
        with self._lock:
            return self._count

    def _ensure_listener(self) -> None:
        with self._lock:
            if self._listener is not None and self._listener.is_alive():
                return
            self._listener = threading.Thread(target=self._listen, name="chopay-events", daemon=True)
            self._listener.start()

    def _listen(self) -> None:
        from redis import Redis
        from redis.exceptions import RedisError

        while True:
            try:
                pubsub = Redis.from_url(str(self.redis_url), health_check_interval=30).pubsub(
                    ignore_subscribe_messages=True
                )
                pubsub.subscribe(CHANNEL)
                for item in pubsub.listen():  # type: ignore[no-untyped-call]
                    if item.get("type") == "message":
                        self.deliver(json.loads(item["data"]))
            except (RedisError, OSError, ValueError):
                log.warning("event subscription lost; resubscribing", exc_info=True)
                threading.Event().wait(1.0)


def init_app(app: Flask, redis_url: str | None, max_streams: int) -> None:
    """Attach the event bus of this process to ``app``."""
    app.extensions["chopay.events"] = Bus(redis_url, max_streams)


def bus(app: Flask | None = None) -> Bus:
    """Return the event bus of ``app`` (the current app by default)."""
    found: Bus = (app or current_app).extensions["chopay.events"]
    return found


def publisher(app: Flask | None = None) -> Any:
    """Return the function the services call (after commit) to publish a payment event."""
    return bus(app).publish


def replay(app: Flask, merchant_id: int, after: int) -> list[tuple[int, dict[str, Any]]]:
    """Return the merchant's payments after id ``after`` as events, oldest first."""
    with db.get_db(app).read_session() as s:
        rows = s.scalars(
            sa.select(Payment)
            .where(Payment.merchant_id == merchant_id, Payment.id > after)
            .order_by(Payment.id)
            .limit(REPLAY_LIMIT)
        ).all()
        return [(p.id, _payment_data(p)) for p in rows]


def stream(
    app: Flask, merchant_id: int, inbox: queue.Queue[dict[str, Any]], last_id: int | None, lifetime: float
) -> Iterator[bytes]:
    """Yield the SSE messages of one merchant: the replay after ``last_id``, then live events.

    The stream ends after ``lifetime`` seconds; the client reconnects with ``Last-Event-ID``
    (``retry:`` tells it how soon), which also lets a load balancer spread streams afresh.
    """
    hub = bus(app)
    deadline = time.monotonic() + lifetime
    replayed: set[int] = set()
    try:
        yield f"retry: 3000\n: {EVENT} stream\n\n".encode()
        if last_id is not None:
            for payment_id, data in replay(app, merchant_id, last_id):
                yield format_event(payment_id, data).encode()
                replayed.add(payment_id)
        while (left := deadline - time.monotonic()) > 0:
            try:
                message = inbox.get(timeout=min(KEEPALIVE, left))
            except queue.Empty:
                yield b": keepalive\n\n"
                continue
            payment_id = int(message["payment"])
            if payment_id in replayed:
                continue  # it committed while the replay was read, and was sent by it
            data = {k: v for k, v in message.items() if k != "merchant"}
            yield format_event(payment_id, data).encode()
    finally:
        hub.unsubscribe(merchant_id, inbox)

"""The simulator's WSGI app: the payOS Payouts API v1, its account lookup, and the faults.

Faults apply to the protocol endpoints (``/v1/...``) only, never to ``/admin``:

* ``--latency-ms N`` waits N ms before handling each request;
* ``--error-rate X`` answers that share of requests with a 500 (``20``) before processing;
* ``--drop-rate X`` processes that share of payout POSTs, commits them, then closes the
  connection without a response (the client sees a lost response, as after a network cut);
* ``--seed N`` makes the fault sequence repeatable.
"""

from __future__ import annotations

import datetime as dt
import errno
import hmac
import json
import logging
import random
import socket
import threading
import time
from typing import Any

from flask import Flask, Response, current_app, request
from sqlalchemy.engine import Engine
from werkzeug.exceptions import HTTPException

from chopay.db import utcnow
from payments.rails.fakebank import accounts as acct
from payments.rails.fakebank import config as cfg
from payments.rails.fakebank import payouts
from payments.rails.fakebank.config import FakebankConfig
from payments.rails.fakebank.models import open_db
from payments.rails.fakebank.notify import Deliverer
from payments.rails.fakebank.protocol import ProtocolError, envelope, parse_batch, parse_single, signature
from payments.rails.webhooks import VIETNAM

log = logging.getLogger("chopay.fakebank")
MAX_BODY = 16 * 1024 * 1024
DROP_KEY = "fakebank.drop"


class ConnectionDropped(OSError):
    """Raised after the socket is shut so the server drops the connection quietly."""

    def __init__(self) -> None:
        super().__init__(errno.ENOTCONN, "connection dropped by --drop-rate")


class Bank:
    """Per-process state of a running simulator: its database, faults and deliverer."""

    def __init__(self, config: FakebankConfig, engine: Engine | None = None) -> None:
        self.config = config
        self.engine = engine or open_db(config.db)
        self._rng = random.Random(config.seed)
        self._lock = threading.Lock()
        self.deliverer = Deliverer(self.engine, config)

    def roll(self, rate: float) -> bool:
        """Draw whether a fault of probability ``rate`` happens now."""
        if rate <= 0.0:
            return False
        with self._lock:
            return self._rng.random() < rate


def bank() -> Bank:
    """Return the running simulator's state."""
    found: Bank = current_app.extensions["fakebank"]
    return found


def create_app(config: FakebankConfig, engine: Engine | None = None) -> Flask:
    """Build the simulator app; its database must already be initialised (see cli)."""
    app = Flask("fakebank")
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY
    app.extensions["fakebank"] = Bank(config, engine)
    app.before_request(_faults)
    app.register_error_handler(ProtocolError, _protocol_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)
    _routes(app)
    from payments.rails.fakebank.admin import admin

    app.register_blueprint(admin)
    app.wsgi_app = DropMiddleware(app.wsgi_app)  # type: ignore[method-assign]
    return app


def _faults() -> Response | None:
    if not request.path.startswith("/v1/"):
        return None
    config = bank().config
    if config.latency_ms:
        time.sleep(config.latency_ms / 1000)
    if bank().roll(config.error_rate):
        return _answer(envelope("20", "Internal server error (injected)"), 500)
    return None


def _answer(body: dict[str, Any], status: int = 200) -> Response:
    response = Response(json.dumps(body, ensure_ascii=False), status=status, mimetype="application/json")
    if body.get("data") is not None:
        response.headers["x-signature"] = signature(body["data"], bank().config.checksum_key)
    return response


def _ok(data: Any) -> Response:
    return _answer(envelope("00", "success", data))


def _protocol_error(exc: ProtocolError) -> Response:
    return _answer(envelope(exc.code, exc.desc), exc.status)


def _http_error(exc: HTTPException) -> Response:
    status = exc.code or 500
    if request.path.startswith("/admin"):
        return Response(
            json.dumps({"error": exc.name.lower().replace(" ", "_"), "message": exc.description}),
            status=status,
            mimetype="application/json",
        )
    code = {404: "404", 405: "405", 413: "01"}.get(status, "01")
    return _answer(envelope(code, exc.description or exc.name), status)


def _unexpected(exc: Exception) -> Response:
    log.exception("unexpected error in the bank simulator")
    return _answer(envelope("20", "Internal server error"), 500)


def _authenticate() -> None:
    config = bank().config
    client = request.headers.get("x-client-id", "")
    key = request.headers.get("x-api-key", "")
    good_client = hmac.compare_digest(client.encode(), config.client_id.encode())
    good_key = hmac.compare_digest(key.encode(), config.api_key.encode())
    if not (good_client and good_key):
        raise ProtocolError("401", "Unauthorized: unknown x-client-id or wrong x-api-key")


def _signed_body() -> Any:
    raw = request.get_data(cache=True)
    try:
        body = json.loads(raw)
    except ValueError:
        raise ProtocolError("01", "the body is not JSON") from None
    given = request.headers.get("x-signature", "")
    if not given:
        raise ProtocolError("02", "x-signature is missing")
    if not isinstance(body, dict):
        raise ProtocolError("01", "the body must be a JSON object")
    try:
        expected = signature(body, bank().config.checksum_key)
    except UnicodeEncodeError:
        raise ProtocolError("01", "the body contains a lone surrogate") from None
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise ProtocolError("02", "x-signature does not match the body")
    return body


class DropMiddleware:
    """Close the connection without an answer when a view asked for it (``--drop-rate``).

    The work is committed by then. Under gunicorn the socket is shut, so the client sees
    the server hang up; the ``ENOTCONN`` raised next is what gunicorn ignores quietly.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        result = self.app(environ, start_response)
        if environ.get(DROP_KEY):
            if hasattr(result, "close"):
                result.close()
            sock = environ.get("gunicorn.socket")
            if isinstance(sock, socket.socket):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    log.debug("the client had already gone")
            raise ConnectionDropped()
        return result


def _routes(app: Flask) -> None:
    def create(kind: str) -> Response:
        _authenticate()
        body = _signed_body()
        parsed = parse_batch(body) if kind == "batch" else parse_single(body)
        b = bank()
        now = utcnow()
        key = request.headers.get("x-idempotency-key") or None
        if key is not None and len(key) > 200:
            raise ProtocolError("01", "x-idempotency-key: longer than 200 characters")
        with b.engine.begin() as conn:
            payout_id = payouts.create(
                conn,
                parsed,
                idempotency_key=key,
                limit=b.config.transfer_limit,
                strict=b.config.strict_accounts,
                settle=dt.timedelta(milliseconds=b.config.settle_ms),
                now=now,
            )
            data = payouts.view(conn, payout_id, now)
        if b.roll(b.config.drop_rate):
            request.environ[DROP_KEY] = True
        return _ok(data)

    @app.post("/v1/payouts")
    def create_single() -> Response:
        """Create a payout of one transfer."""
        return create("single")

    @app.post("/v1/payouts/batch")
    def create_batch() -> Response:
        """Create a payout of many transfers."""
        return create("batch")

    @app.post("/v1/payouts/estimate-credit")
    def estimate_credit() -> Response:
        """Tell how much a single or batch payout would take from the source."""
        _authenticate()
        body = _signed_body()
        parsed = parse_batch(body) if "payouts" in body else parse_single(body)
        return _ok({"estimateCredit": sum(i.amount for i in parsed.items)})

    @app.get("/v1/payouts/<identifier>")
    def get_payout(identifier: str) -> Response:
        """Return one payout by its id or referenceId."""
        _authenticate()
        with bank().engine.connect().execution_options(read_only=True) as conn, conn.begin():
            found = payouts.find(conn, identifier)
            if found is None:
                raise ProtocolError("05", f"no payout {identifier[:64]!r}")
            return _ok(payouts.view(conn, found, utcnow()))

    @app.get("/v1/payouts")
    def list_payouts() -> Response:
        """List payouts, optionally those carrying a referenceId."""
        _authenticate()
        args = request.args
        allowed = {"referenceId", "approvalState", "category", "fromDate", "toDate", "limit", "offset"}
        unknown = sorted(set(args) - allowed)
        if unknown:
            raise ProtocolError("01", f"{unknown[0]}: unknown query parameter")
        limit = _bounded(args.get("limit", "10"), "limit", 1, 100)
        offset = _bounded(args.get("offset", "0"), "offset", 0, 10**9)
        approval = args.get("approvalState")
        if approval is not None and approval not in APPROVAL_STATES:
            raise ProtocolError("01", f"approvalState: must be one of {', '.join(APPROVAL_STATES)}")
        with bank().engine.connect().execution_options(read_only=True) as conn, conn.begin():
            return _ok(
                payouts.search(
                    conn,
                    reference_id=args.get("referenceId"),
                    approval=approval,
                    category=args.get("category"),
                    start=_moment(args.get("fromDate"), "fromDate"),
                    end=_moment(args.get("toDate"), "toDate", end_of_day=True),
                    limit=limit,
                    offset=offset,
                    now=utcnow(),
                )
            )

    @app.get("/v1/payouts-account/balance")
    def balance() -> Response:
        """Return the payout (source) account and its balance."""
        _authenticate()
        with bank().engine.connect().execution_options(read_only=True) as conn, conn.begin():
            source = acct.get(conn, cfg.SOURCE_BIN, cfg.SOURCE_NUMBER)
        assert source is not None
        return _ok(
            {
                "accountNumber": source.number,
                "accountName": source.holder_name,
                "currency": "VND",
                "balance": str(source.balance),
            }
        )

    @app.get("/v1/accounts/<bin_>/<number>")
    def lookup(bin_: str, number: str) -> Response:
        """Return a destination account's holder name and status (the pre-check)."""
        _authenticate()
        strict = bank().config.strict_accounts
        with bank().engine.begin() as conn:
            found = acct.resolve(conn, [(bin_, number)], strict=strict).get((bin_, number))
        if found is None:
            raise ProtocolError("05", "no such account")
        return _ok(
            {
                "bin": found.bin,
                "accountNumber": found.number,
                "accountName": acct.bank_name(found.number, found.holder_name),
                "status": found.status,
            }
        )


APPROVAL_STATES = ("PROCESSING", "COMPLETED", "PARTIAL_COMPLETED", "FAILED")


def _moment(text: str | None, name: str, *, end_of_day: bool = False) -> dt.datetime | None:
    """Parse a date (Vietnam day; a ``toDate`` day is included) or an ISO date-time with offset."""
    if text is None:
        return None
    try:
        if len(text) == 10:
            day = dt.date.fromisoformat(text) + dt.timedelta(days=1 if end_of_day else 0)
            return dt.datetime.combine(day, dt.time(), VIETNAM)
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ProtocolError("01", f"{name}: must be YYYY-MM-DD or an ISO 8601 date-time") from None
    if moment.tzinfo is None:
        raise ProtocolError("01", f"{name}: a date-time needs a UTC offset")
    return moment


def _bounded(text: str, name: str, low: int, high: int) -> int:
    if not (text.isascii() and text.isdigit()) or not low <= int(text) <= high:
        raise ProtocolError("01", f"{name}: must be an integer {low}..{high}")
    return int(text)

"""JSON-lines logging with request ids, and nothing a client typed.

Each request is logged once, when it ends, with its id, method, route, status and duration.
``X-Request-ID`` is accepted from the client when it looks like an id and generated otherwise,
and echoed on every response. Headers, bodies, query strings and raw paths are never logged:
tokens and personal data travel there (a token pasted into a URL is still a token). The route
is the matched URL rule (``/v1/ledger/transactions/<string:tx_id>``), or ``unmatched``.

Tracebacks keep their frames but withhold the exceptions' messages, which often quote the
value that failed (a name, an account number); database errors never carry their statement
parameters at all (``hide_parameters``). URLs of services are logged with their passwords
hidden (:func:`redact_url`).
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import traceback
import uuid
from types import TracebackType
from typing import Any

from flask import Flask, Response, g, request
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

REQUEST_ID_HEADER = "X-Request-ID"
_REQUEST_ID_OK = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JSONFormatter(logging.Formatter):
    """Format each record as one JSON object on one line."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value
        request_id = _current_request_id()
        if request_id and "request_id" not in out:
            out["request_id"] = request_id
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, ensure_ascii=False)

    def formatException(
        self, ei: tuple[type[BaseException], BaseException, TracebackType | None] | tuple[None, None, None]
    ) -> str:
        """Format a traceback's frames and exception types, withholding the messages."""
        exc = ei[1]
        if exc is None:
            return ""
        chain: list[BaseException] = []
        current: BaseException | None = exc
        while current is not None and all(current is not seen for seen in chain):
            chain.append(current)
            current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
        parts = []
        for item in reversed(chain):
            frames = "".join(traceback.StackSummary.extract(traceback.walk_tb(item.__traceback__)).format())
            kind = type(item)
            parts.append(
                f"Traceback (most recent call last):\n{frames}{kind.__module__}.{kind.__qualname__}: "
                "(message withheld: it may quote client data)"
            )
        return "\n\nDuring handling of the above exception, another exception occurred:\n\n".join(parts)


JSONFormatter.converter = time.gmtime


def _current_request_id() -> str | None:
    try:
        value = g.get("request_id")
    except RuntimeError:  # outside an app context
        return None
    return str(value) if value else None


def redact_url(url: str) -> str:
    """Return ``url`` with any password replaced by ``***``."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return re.sub(r"//[^@/]*@", "//***@", url)


def configure(level: str) -> None:
    """Send chopay's logs to stderr as JSON lines at ``level``."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JSONFormatter())
    root = logging.getLogger("chopay")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False


def init_app(app: Flask) -> None:
    """Assign request ids and log one line per request."""
    access = logging.getLogger("chopay.access")

    @app.before_request
    def _start() -> None:
        incoming = request.headers.get(REQUEST_ID_HEADER, "")
        g.request_id = incoming if _REQUEST_ID_OK.match(incoming) else uuid.uuid4().hex
        g.started = time.perf_counter()

    @app.after_request
    def _finish(response: Response) -> Response:
        request_id = g.get("request_id") or uuid.uuid4().hex
        response.headers[REQUEST_ID_HEADER] = request_id
        started = g.get("started")
        duration_ms = round((time.perf_counter() - started) * 1000, 2) if started else None
        access.info(
            "request",
            extra={
                "request_id": request_id,
                "method": request.method,
                "route": request.url_rule.rule if request.url_rule is not None else "unmatched",
                "status": response.status_code,
                "duration_ms": duration_ms,
                "user_id": g.get("user_id"),
            },
        )
        return response

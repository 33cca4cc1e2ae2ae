"""Helpers shared by the tests: the RFC 9457 shape of errors, and capture of JSON log lines."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from chopay.logs import JSONFormatter
from chopay.users import User

PROBLEM_JSON = "application/problem+json"


def assert_problem(resp: TestResponse, status: int, code: str) -> dict[str, Any]:
    """Assert ``resp`` is a problem+json document with ``status`` and ``code``; return it."""
    assert resp.status_code == status, resp.get_data(as_text=True)
    assert resp.mimetype == PROBLEM_JSON
    body = resp.get_json(force=True)
    assert isinstance(body, dict)
    assert body["status"] == status
    assert body["code"] == code
    assert body["type"] == f"urn:chopay:problem:{code}"
    assert isinstance(body["title"], str)
    assert body["title"]
    assert isinstance(body["detail"], str)
    assert body["detail"]
    # The body names the request so a client can quote it; it is the echoed header.
    assert body["request_id"] == resp.headers["X-Request-ID"]
    return body


def count_users(session: Session) -> int:
    """Return how many users the database holds."""
    return int(session.scalar(sa.select(sa.func.count()).select_from(User)) or 0)


class LogCapture(logging.Handler):
    """Keep every record as the JSON line chopay would write, formatted while it is emitted.

    Formatting at emit time matters: the formatter adds the request id from the request
    context, which is gone once the request has ended.
    """

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JSONFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))

    @property
    def records(self) -> list[dict[str, Any]]:
        """Return the captured lines parsed as JSON."""
        return [json.loads(line) for line in self.lines]

    def named(self, logger: str) -> list[dict[str, Any]]:
        """Return the parsed lines of one logger."""
        return [r for r in self.records if r["logger"] == logger]


@contextmanager
def capture_logs(level: int = logging.DEBUG) -> Iterator[LogCapture]:
    """Capture everything chopay logs at ``level`` and above.

    The ``chopay`` logger does not propagate to the root logger (so caplog sees nothing), and
    ``create_app`` replaces its handlers: enter this after the app under test was created.
    """
    logger = logging.getLogger("chopay")
    handler = LogCapture()
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(level)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)

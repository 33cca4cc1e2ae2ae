"""``Idempotency-Key`` for POST endpoints.

The first request with a key claims it by inserting a row; the unique primary key in the
database, not code, makes that claim exclusive, so concurrent first uses execute once. When the
view finishes, its response is stored on the row. Later requests with the same key:

* same method, path and body: the stored response is returned with ``Idempotent-Replayed: true``;
* anything else: 409 ``idempotency_key_reused``;
* while the first is still running: they wait up to ``WAIT_SECONDS`` for it, then answer 409
  ``idempotency_key_in_progress``.

A 5xx response or an unexpected exception releases the key so the client can retry; 2xx-4xx
responses, problem documents included, are kept.
A claim whose request died without releasing it (a killed process) expires after
``STALE_AFTER`` and can be taken over. Keys are scoped to the authenticated user.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import time
from collections.abc import Callable
from typing import Any, TypeVar, cast

import sqlalchemy as sa
from flask import Response, g, make_response, request
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column
from werkzeug.exceptions import HTTPException

from chopay import db
from chopay.db import Base, CreatedAt, utcnow
from chopay.errors import BadRequest, ChopayError, Conflict, from_http_exception, problem_response

F = TypeVar("F", bound=Callable[..., Any])

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 200
WAIT_SECONDS = 10.0
STALE_AFTER = dt.timedelta(minutes=5)

OPENAPI_PARAMETER = {
    "in": "header",
    "name": HEADER,
    "required": False,
    "schema": {"type": "string", "maxLength": MAX_KEY_LENGTH},
    "description": "Make the request safe to retry: the same key and body return the first response.",
}


class IdempotencyRecord(Base):
    __tablename__ = "idempotency_keys"

    scope: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    key: Mapped[str] = mapped_column(sa.String(MAX_KEY_LENGTH), primary_key=True)
    request_hash: Mapped[str] = mapped_column(sa.String(64))
    status: Mapped[int | None]
    body: Mapped[bytes | None] = mapped_column(sa.LargeBinary)
    content_type: Mapped[str | None] = mapped_column(sa.String(100))
    headers: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[CreatedAt]
    completed_at: Mapped[dt.datetime | None]


def request_fingerprint() -> str:
    """Hash the parts of the request that must match for a replay."""
    h = hashlib.sha256()
    h.update(request.method.encode())
    h.update(b"\0")
    h.update(request.path.encode())
    h.update(b"\0")
    h.update(request.get_data(cache=True))
    return h.hexdigest()


def _claim(scope: str, key: str, fingerprint: str) -> IdempotencyRecord | None:
    """Insert the claim row; return the existing record when the key is already taken."""
    database = db.get_db()
    with database.session() as s:
        try:
            with s.begin():
                s.add(IdempotencyRecord(scope=scope, key=key, request_hash=fingerprint))
            return None
        except IntegrityError:
            pass
        with s.begin():
            existing = s.get(IdempotencyRecord, (scope, key))
            if (
                existing is not None
                and existing.status is None
                and existing.created_at < utcnow() - STALE_AFTER
            ):
                # The claimant died; take the claim over.
                existing.created_at = utcnow()
                existing.request_hash = fingerprint
                return None
            return existing


def _load(scope: str, key: str) -> IdempotencyRecord | None:
    with db.get_db().session() as s:
        return s.get(IdempotencyRecord, (scope, key))


def _finish(scope: str, key: str, response: Response) -> None:
    with db.get_db().session() as s, s.begin():
        record = s.get(IdempotencyRecord, (scope, key))
        if record is None:
            return
        if response.status_code >= 500:
            s.delete(record)
            return
        record.status = response.status_code
        record.body = response.get_data()
        record.content_type = response.content_type
        kept = {k: v for k, v in response.headers.items() if k.lower() in {"location", "etag"}}
        record.headers = json.dumps(kept)
        record.completed_at = utcnow()


def _release(scope: str, key: str) -> None:
    with db.get_db().session() as s, s.begin():
        s.execute(
            sa.delete(IdempotencyRecord).where(
                IdempotencyRecord.scope == scope,
                IdempotencyRecord.key == key,
                IdempotencyRecord.status.is_(None),
            )
        )


def _replay(record: IdempotencyRecord, fingerprint: str) -> Response:
    if record.request_hash != fingerprint:
        raise Conflict(
            "This Idempotency-Key was already used with a different request.", code="idempotency_key_reused"
        )
    assert record.status is not None
    resp = Response(record.body, status=record.status, content_type=record.content_type)
    for name, value in json.loads(record.headers or "{}").items():
        resp.headers[name] = value
    resp.headers["Idempotent-Replayed"] = "true"
    return resp


def idempotent(func: F) -> F:
    """Honour an ``Idempotency-Key`` header on the decorated POST view."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        key = request.headers.get(HEADER)
        if key is None:
            return func(*args, **kwargs)
        key = key.strip()
        if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
            raise BadRequest(
                f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable characters.",
                code="idempotency_key_invalid",
            )
        scope = f"user:{g.get('user_id', 'anonymous')}"
        fingerprint = request_fingerprint()
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            existing = _claim(scope, key, fingerprint)
            if existing is None:
                break
            if existing.request_hash != fingerprint or existing.status is not None:
                return _replay(existing, fingerprint)
            while existing is not None and existing.status is None and time.monotonic() < deadline:
                time.sleep(0.05)
                existing = _load(scope, key)
            if existing is not None and existing.status is not None:
                return _replay(existing, fingerprint)
            if existing is not None:
                raise Conflict(
                    "A request with this Idempotency-Key is still being processed; retry later.",
                    code="idempotency_key_in_progress",
                )
            # The first request failed and released the key: try to claim it again.
        try:
            response = make_response(func(*args, **kwargs))
        except ChopayError as exc:
            response = problem_response(exc.to_problem())
        except HTTPException as exc:
            response = from_http_exception(exc)
        except BaseException:
            db.end_request_transaction()
            _release(scope, key)
            raise
        db.end_request_transaction()
        _finish(scope, key, response)
        return response

    return cast(F, wrapper)

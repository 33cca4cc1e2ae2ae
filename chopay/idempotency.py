"""``Idempotency-Key`` for POST endpoints.

The first request with a key claims it by inserting a row in the request's own unit of work,
and stores its response on that row before the unit of work commits. The row therefore
becomes visible together with the request's effects, or not at all: there is never a committed
claim without a response, and so no claim that a crash can leave behind. The unique primary key
makes the claim exclusive. A second request with the same key meanwhile waits on that key
(PostgreSQL) or on the write lock (SQLite) until the first commits or rolls back; the claim's
lease is the first request's own database transaction, which ends when that request ends, or
at once when its process dies.

Later requests with the same key:

* same method, path, query and body: the stored response, with ``Idempotent-Replayed: true``;
* anything else: 409 ``idempotency_key_reused``.

A request that fails with a problem (4xx) writes nothing, but its answer is still stored, in a
unit of work of its own, so that a retry gets the same answer. A 5xx or an unexpected exception
stores nothing: the client may simply retry. Keys are scoped to the authenticated user.

A response that carries a secret (a new API token) is stored without it: the secret is shown
once. Its replay answers the same status and body with the secret fields set to null and the
header ``Idempotent-Secret-Withheld`` naming them.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import re
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, cast

import sqlalchemy as sa
from flask import Response, current_app, g, make_response, request
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column
from werkzeug.exceptions import HTTPException

from chopay import db
from chopay.db import Base, CreatedAt
from chopay.errors import BadRequest, ChopayError, Conflict, from_http_exception, problem_response

F = TypeVar("F", bound=Callable[..., Any])

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 200
_KEY = re.compile(rf"[ -~]{{1,{MAX_KEY_LENGTH}}}")
_KEPT_HEADERS = frozenset({"location", "etag"})

OPENAPI_PARAMETER = {
    "in": "header",
    "name": HEADER,
    "required": False,
    "schema": {
        "type": "string",
        "minLength": 1,
        "maxLength": MAX_KEY_LENGTH,
        "pattern": "^[ -~]*[!-~][ -~]*$",
    },
    "description": "Make the request safe to retry: the same key and body return the first response.",
}


class IdempotencyRecord(Base):
    __tablename__ = "idempotency_keys"

    scope: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    key: Mapped[str] = mapped_column(sa.String(MAX_KEY_LENGTH), primary_key=True)
    request_hash: Mapped[str] = mapped_column(sa.String(64))
    status: Mapped[int]
    body: Mapped[bytes] = mapped_column(sa.LargeBinary)
    content_type: Mapped[str | None] = mapped_column(sa.String(100))
    headers: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[CreatedAt]


def request_fingerprint() -> str:
    """Hash what must match for a replay: method, path, query, media type and body.

    The media type counts: the same bytes sent as JSON and as a multipart form are two requests.
    A multipart body has already been parsed (and its files spooled) when this runs, so its
    fields and the files' contents are hashed instead of the raw bytes.
    """
    h = hashlib.sha256()
    # The media type without its parameters: a multipart boundary differs on every retry.
    media = request.mimetype.encode("latin-1", "replace")
    for part in (request.method.encode(), request.path.encode(), request.query_string, media):
        h.update(part)
        h.update(b"\0")
    if request.mimetype.startswith("multipart/"):
        for name, value in sorted(request.form.items(multi=True)):
            h.update(f"field\0{name}\0{value}\0".encode())
        for name, upload in sorted(request.files.items(multi=True), key=lambda item: item[0]):
            h.update(f"file\0{name}\0{upload.filename}\0".encode())
            while chunk := upload.stream.read(1 << 16):
                h.update(chunk)
            upload.stream.seek(0)
    else:
        h.update(request.get_data(cache=True))
    return h.hexdigest()


def _record(
    scope: str, key: str, fingerprint: str, response: Response, secrets: Sequence[str]
) -> IdempotencyRecord:
    kept = {k: v for k, v in response.headers.items() if k.lower() in _KEPT_HEADERS}
    body = response.get_data()
    if secrets and response.is_json:
        document = json.loads(body)
        withheld = [name for name in secrets if isinstance(document, dict) and document.get(name) is not None]
        if withheld:
            body = cast(
                Response, current_app.json.response({**document, **dict.fromkeys(withheld)})
            ).get_data()
            kept["Idempotent-Secret-Withheld"] = ", ".join(withheld)
    return IdempotencyRecord(
        scope=scope,
        key=key,
        request_hash=fingerprint,
        status=response.status_code,
        body=body,
        content_type=response.content_type,
        headers=json.dumps(kept),
        created_at=dt.datetime.now(dt.UTC),
    )


def _replay(record: IdempotencyRecord, fingerprint: str) -> Response:
    if record.request_hash != fingerprint:
        raise Conflict(
            "This Idempotency-Key was already used with a different request.", code="idempotency_key_reused"
        )
    resp = Response(record.body, status=record.status, content_type=record.content_type)
    for name, value in json.loads(record.headers).items():
        resp.headers[name] = value
    resp.headers["Idempotent-Replayed"] = "true"
    return resp


def _claim(session: Session, scope: str, key: str, fingerprint: str) -> IdempotencyRecord | None:
    """Return the stored record of ``key``, or None when this request now holds the key.

    The claim is a row with a placeholder response, flushed inside a savepoint: a duplicate
    key fails that savepoint only, and its row (committed by then) is read instead.
    """
    placeholder = IdempotencyRecord(
        scope=scope, key=key, request_hash=fingerprint, status=0, body=b"", headers="{}"
    )
    try:
        with session.begin_nested():
            session.add(placeholder)
    except IntegrityError:
        found = session.get(IdempotencyRecord, (scope, key), populate_existing=True)
        assert found is not None  # committed: uncommitted claims block the insert instead
        return found
    return None


def _store_failure(scope: str, key: str, fingerprint: str, response: Response) -> None:
    """Store a 4xx answer in a unit of work of its own; the request's was rolled back."""
    try:
        with db.unit_of_work() as s:
            s.add(_record(scope, key, fingerprint, response, ()))
    except IntegrityError:
        pass  # a concurrent retry of the same request stored its answer first


def idempotent(func: F | None = None, *, secrets: Sequence[str] = ()) -> Any:
    """Honour an ``Idempotency-Key`` header on the decorated POST view.

    ``secrets`` names top-level fields of the JSON response that are shown once and never stored.
    """
    if func is None:
        return functools.partial(idempotent, secrets=secrets)

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        key = request.headers.get(HEADER)
        if key is None:
            return func(*args, **kwargs)
        key = key.strip()
        if not _KEY.fullmatch(key):
            raise BadRequest(
                f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable ASCII characters.",
                code="idempotency_key_invalid",
            )
        scope = f"user:{g.get('user_id', 'anonymous')}"
        fingerprint = request_fingerprint()
        session = db.session()
        existing = _claim(session, scope, key, fingerprint)
        if existing is not None:
            return _replay(existing, fingerprint)
        try:
            response = make_response(func(*args, **kwargs))
        except ChopayError as exc:
            response = problem_response(exc.to_problem())
        except HTTPException as exc:
            response = from_http_exception(exc)
        if response.status_code >= 500:
            return response  # nothing is stored: the request rolls back, claim included
        if response.status_code >= 400:
            session.rollback()
            _store_failure(scope, key, fingerprint, response)
            return response
        stored = _record(scope, key, fingerprint, response, secrets)
        claim = session.get(IdempotencyRecord, (scope, key))
        assert claim is not None
        for column in ("status", "body", "content_type", "headers"):
            setattr(claim, column, getattr(stored, column))
        session.flush()
        return response

    return cast(F, wrapper)

"""RFC 9457 problem details for every error response.

Exception tree::

    ChopayError                  status, code, title, detail, extra members
    ├── BadRequest               400
    ├── Unauthorized             401  token_missing | token_malformed | token_invalid | token_revoked
    ├── Forbidden                403  role_forbidden | merchant_forbidden
    ├── NotFound                 404
    ├── Conflict                 409  e.g. idempotency_key_reused
    ├── Gone                     410  a resource that existed and is no longer served
    ├── UnsupportedMediaType     415
    ├── TooManyRequests          429  rate_limited
    └── Unprocessable            422  domain rule broken by otherwise well-formed input

Domain packages subclass these. Werkzeug's HTTP exceptions (404 routes, 405, 413, ...) and
marshmallow validation failures are converted to the same shape, and anything unexpected
becomes a 500 whose body holds only the request id; the traceback goes to the log.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from flask import Flask, Response, g, json
from werkzeug.exceptions import HTTPException

log = logging.getLogger("chopay.errors")

PROBLEM_JSON = "application/problem+json"

# Titles are in sentence case, one per status, whoever raises the error: chopay or the framework.
TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    410: "Gone",
    413: "Payload too large",
    415: "Unsupported media type",
    422: "Unprocessable request",
    429: "Too many requests",
    500: "Internal server error",
    503: "Service unavailable",
}

# Stable codes for errors raised by the framework rather than by chopay code.
HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    410: "gone",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_failed",
    429: "too_many_requests",
    500: "internal_error",
    503: "unavailable",
}


def problem_type(code: str) -> str:
    """Return the problem type URI for a stable error code."""
    return f"urn:chopay:problem:{code}"


class ChopayError(Exception):
    """An error with an HTTP status and a stable, documented code."""

    status: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"
    title: ClassVar[str] = TITLES[400]

    def __init__(self, detail: str, *, code: str | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code  # type: ignore[misc]
        self.extra = extra

    def to_problem(self) -> dict[str, Any]:
        """Return the problem document of this error."""
        return problem(self.status, self.code, self.title, self.detail, **self.extra)


class BadRequest(ChopayError):
    status = 400
    code = "bad_request"
    title = TITLES[400]


class Unauthorized(ChopayError):
    status = 401
    code = "unauthorized"
    title = TITLES[401]


class Forbidden(ChopayError):
    status = 403
    code = "forbidden"
    title = TITLES[403]


class NotFound(ChopayError):
    status = 404
    code = "not_found"
    title = TITLES[404]


class Conflict(ChopayError):
    status = 409
    code = "conflict"
    title = TITLES[409]


class UnsupportedMediaType(ChopayError):
    status = 415
    code = "unsupported_media_type"
    title = TITLES[415]


class Gone(ChopayError):
    status = 410
    code = "gone"
    title = TITLES[410]


class TooManyRequests(ChopayError):
    status = 429
    code = "too_many_requests"
    title = TITLES[429]


class Unprocessable(ChopayError):
    status = 422
    code = "unprocessable"
    title = TITLES[422]


def problem(status: int, code: str, title: str, detail: str, **extra: Any) -> dict[str, Any]:
    """Build a problem document, adding the request id when there is one."""
    body: dict[str, Any] = {
        "type": problem_type(code),
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
    }
    request_id = g.get("request_id") if g else None
    if request_id:
        body["request_id"] = request_id
    body.update(extra)
    return body


def problem_response(body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    """Serialise a problem document as ``application/problem+json``."""
    resp = Response(json.dumps(body), status=body["status"], mimetype=PROBLEM_JSON)
    for name, value in (headers or {}).items():
        resp.headers[name] = value
    return resp


def from_http_exception(error: HTTPException) -> Response:
    """Convert a werkzeug exception (raised by Flask or by webargs) to problem+json."""
    status = error.code or 500
    if status >= 500:
        return internal_error(error)
    data: dict[str, Any] = getattr(error, "data", None) or {}
    messages = data.get("errors") or data.get("messages")
    code = HTTP_CODES.get(status, "http_error")
    detail = error.description or error.name
    extra: dict[str, Any] = {}
    if messages is not None:
        if status == 400 and messages == {"json": ["Invalid JSON body."]}:
            code, detail = "malformed_json", "The request body is not valid JSON."
        else:
            extra["errors"] = messages
            detail = _summarise(messages)
    if status == 405 and error.valid_methods:  # type: ignore[attr-defined]
        extra["allowed"] = sorted(error.valid_methods)  # type: ignore[attr-defined]
    body = problem(status, code, TITLES.get(status, error.name[:1] + error.name[1:].lower()), detail, **extra)
    headers = dict(data.get("headers") or {})
    for name, value in error.get_headers():
        if name.lower() not in {"content-type", "content-length"}:
            headers[name] = value
    return problem_response(body, headers)


def _summarise(messages: Any) -> str:
    """Turn marshmallow's nested messages into one readable sentence."""
    parts: list[str] = []

    def walk(prefix: str, node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(f"{prefix}.{key}" if prefix else str(key), value)
        elif isinstance(node, list) and all(isinstance(m, str) for m in node):
            parts.append(f"{prefix}: {' '.join(node)}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(f"{prefix}[{i}]", value)
        else:
            parts.append(f"{prefix}: {node}")

    walk("", messages)
    return "Invalid input. " + "; ".join(parts[:10]) if parts else "Invalid input."


def internal_error(error: BaseException) -> Response:
    """Log ``error`` with its traceback and answer a 500 that reveals nothing."""
    log.error("unhandled error", exc_info=error)
    body = problem(
        500,
        "internal_error",
        TITLES[500],
        "The server failed to handle the request. Quote the request id when reporting it.",
    )
    return problem_response(body)


def init_app(app: Flask) -> None:
    """Register the problem+json handlers on ``app``."""
    app.register_error_handler(ChopayError, lambda e: problem_response(e.to_problem()))
    app.register_error_handler(HTTPException, from_http_exception)
    app.register_error_handler(Exception, internal_error)

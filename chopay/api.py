"""The flask-smorest ``Api``: OpenAPI document, offline docs and JSON request rules.

``/openapi.json`` is the OpenAPI 3 document and ``/docs`` the Swagger UI, whose JavaScript and
CSS come from the ``swagger-ui-bundle`` package and are served by chopay itself, so the docs
work on a machine with no internet.
"""

from __future__ import annotations

import json
from typing import Any

import marshmallow as ma
from flask import Flask, Response, request, send_from_directory
from flask_smorest import Api as SmorestApi
from swagger_ui_bundle import swagger_ui_path
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from chopay.auth import BEARER_SCHEME
from chopay.errors import BadRequest, UnsupportedMediaType, from_http_exception

API_PREFIX = "/v1"
DOCS_ASSETS = "/docs/assets/"


class ProblemSchema(ma.Schema):
    """An RFC 9457 problem document."""

    type = ma.fields.String(metadata={"description": "URI naming the problem type"})
    title = ma.fields.String()
    status = ma.fields.Integer()
    detail = ma.fields.String()
    code = ma.fields.String(metadata={"description": "Stable machine-readable error code"})
    request_id = ma.fields.String()
    errors = ma.fields.Dict(metadata={"description": "Field errors, for invalid input"})


class Api(SmorestApi):  # type: ignore[misc]
    """flask-smorest's Api answering errors as problem+json."""

    ERROR_SCHEMA = ProblemSchema

    def handle_http_exception(self, error: HTTPException) -> Response:
        return from_http_exception(error)


def openapi_config() -> dict[str, Any]:
    """Return the Flask config keys flask-smorest reads."""
    return {
        "API_TITLE": "chopay",
        "API_VERSION": "v1",
        "OPENAPI_VERSION": "3.0.3",
        "OPENAPI_URL_PREFIX": "/",
        "OPENAPI_JSON_PATH": "openapi.json",
        "OPENAPI_SWAGGER_UI_PATH": "/docs",
        "OPENAPI_SWAGGER_UI_URL": DOCS_ASSETS,
        "API_SPEC_OPTIONS": {
            "info": {"description": "Cashless QR payments, benefit disbursement and a signed ledger."},
            "security": [{"bearerAuth": []}],
        },
    }


def _refuse_oversized_stream() -> None:
    """Answer 413 to a streamed (chunked) body longer than the limit.

    Werkzeug refuses an oversized body up front only when it has a Content-Length. A chunked
    body is cut at the limit instead, and the view would parse the truncated prefix (which can
    even be valid JSON), so read it here and check whether anything is left beyond the limit.
    """
    limit = request.max_content_length
    if limit is None or request.content_length is not None or not request.headers.get("Transfer-Encoding"):
        return
    body = request.get_data(cache=True)
    if len(body) >= limit and request.environ["wsgi.input"].read(1):
        raise RequestEntityTooLarge()


def _require_parsable_json() -> None:
    """Answer 400 ``malformed_json`` to a body that the JSON parser rejects in any way.

    webargs turns only syntax errors into a 400; nesting deeper than the recursion limit or
    an integer literal beyond Python's digit limit would otherwise escape as a 500.
    """
    body = request.get_data(cache=True)
    if not body:
        return
    try:
        json.loads(body)
    except (ValueError, RecursionError):
        raise BadRequest("The request body is not valid JSON.", code="malformed_json") from None


def init_app(app: Flask) -> Api:
    """Create the Api, serve the docs assets and enforce JSON bodies under ``/v1``."""
    app.config.update({k: v for k, v in openapi_config().items() if k not in app.config})
    api = Api(app)
    api.spec.components.security_scheme("bearerAuth", BEARER_SCHEME)

    @app.get(DOCS_ASSETS + "<path:filename>")
    def docs_assets(filename: str) -> Response:
        """Serve the Swagger UI assets bundled with the service."""
        return send_from_directory(str(swagger_ui_path), filename, max_age=86400)

    @app.before_request
    def _require_json() -> None:
        _refuse_oversized_stream()
        if not (
            request.path.startswith(API_PREFIX + "/")
            and request.method in {"POST", "PUT", "PATCH"}
            and (request.content_length or request.headers.get("Transfer-Encoding"))
        ):
            return
        if request.mimetype == "application/json":
            _require_parsable_json()
        elif not request.mimetype.startswith("multipart/") and not request.mimetype.startswith("text/csv"):
            raise UnsupportedMediaType(
                f"Send the request body as application/json, not {request.mimetype or 'no type'}."
            )

    return api

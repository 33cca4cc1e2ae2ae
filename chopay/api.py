"""The flask-smorest ``Api``: OpenAPI document, offline docs and the request rules under ``/v1``.

``/openapi.json`` is the OpenAPI 3 document and ``/docs`` the Swagger UI, whose JavaScript and
CSS come from the ``swagger-ui-bundle`` package and are served by chopay itself, so the docs
work on a machine with no internet.

Every request under ``/v1`` passes these checks, in this order, before its view runs. Its body
is read completely here, before the view opens the request's unit of work, so that a slow
client never holds a database connection or SQLite's write lock while it sends:

1. authentication and role (``chopay.auth``), for views that declare roles;
2. no NUL or other control character in the path or the query (400 ``invalid_character``);
3. no query parameter the OpenAPI document does not declare for the operation (400
   ``unknown_parameter``): a typo such as ``?statsu=paid`` must not silently return every row;
4. a body of a supported media type (415), which, for JSON, parses, nests at most
   ``MAX_JSON_DEPTH`` levels and holds no NUL or lone surrogate in any string (400
   ``malformed_json``, ``json_too_deep``, ``invalid_text``);
5. the view's own schema (422 ``validation_failed`` with field errors).

A body over ``CHOPAY_MAX_BODY_BYTES`` is a 413 whenever it is read. Every error response is
documented as ``application/problem+json``.
"""

from __future__ import annotations

import http
import json
import re
from collections.abc import Iterator
from typing import Any

import marshmallow as ma
from apispec import BasePlugin
from flask import Flask, Response, current_app, request, send_from_directory
from flask_smorest import Api as SmorestApi
from flask_smorest.spec.plugins import FlaskPlugin
from flask_smorest.utils import prepare_response
from swagger_ui_bundle import swagger_ui_path
from werkzeug.exceptions import ClientDisconnected, HTTPException, RequestEntityTooLarge
from werkzeug.routing import BaseConverter, IntegerConverter, Map

from chopay.auth import BEARER_SCHEME
from chopay.db import MAX_ID
from chopay.errors import PROBLEM_JSON, BadRequest, UnsupportedMediaType, from_http_exception

API_PREFIX = "/v1"
DOCS_ASSETS = "/docs/assets/"
MAX_JSON_DEPTH = 32
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_BRACKET = re.compile(rb"[\[\]{}]")
_SURROGATE = re.compile("[\ud800-\udfff]")


class ProblemSchema(ma.Schema):
    """An RFC 9457 problem document; a problem may carry extension members of its own."""

    class Meta:
        unknown = ma.INCLUDE

    type = ma.fields.String(metadata={"description": "URI naming the problem type"})
    title = ma.fields.String()
    status = ma.fields.Integer()
    detail = ma.fields.String()
    code = ma.fields.String(metadata={"description": "Stable machine-readable error code"})
    request_id = ma.fields.String()
    errors = ma.fields.Dict(metadata={"description": "Field errors, for invalid input"})


class Api(SmorestApi):  # type: ignore[misc]
    """flask-smorest's Api answering errors as problem+json, and documenting them so."""

    ERROR_SCHEMA = ProblemSchema

    def handle_http_exception(self, error: HTTPException) -> Response:
        return from_http_exception(error)

    def _register_responses(self) -> None:
        """Document every error response as ``application/problem+json`` with the problem schema."""
        for status in http.HTTPStatus:
            response: dict[str, Any] = {"description": status.phrase}
            if status >= 200 and status not in (204, 304):
                response["schema"] = self.ERROR_SCHEMA
            prepare_response(response, self.spec, PROBLEM_JSON)
            self.spec.components.response(status.name, response, lazy=True)
        default = {"description": "An RFC 9457 problem document", "schema": self.ERROR_SCHEMA}
        prepare_response(default, self.spec, PROBLEM_JSON)
        self.spec.components.response(self.DEFAULT_ERROR_RESPONSE_NAME, default, lazy=True)


class ServerResponses(BasePlugin):
    """Document what the HTTP server, not chopay, answers before a request reaches the app."""

    def operation_helper(
        self, path: str | None = None, operations: dict[str, Any] | None = None, **kwargs: Any
    ) -> None:
        for operation in (operations or {}).values():
            if isinstance(operation, dict):
                operation.setdefault("responses", {}).setdefault(
                    "414",
                    {
                        "description": "Request line longer than 8 KiB, answered by gunicorn as HTML",
                        "content": {"text/html": {"schema": {"type": "string"}}},
                    },
                )


QUERY_TEXT = r"^[^\x00-\x1f\x7f]*$"


class QueryText(BasePlugin):
    """State in the document that query strings hold no control character (400 ``invalid_character``).

    The request pipeline refuses them before any schema runs; a free-text query parameter
    (``?name=``) without a pattern of its own gets this one, so that clients and the contract
    fuzzer know the rule.
    """

    def operation_helper(
        self, path: str | None = None, operations: dict[str, Any] | None = None, **kwargs: Any
    ) -> None:
        for operation in (operations or {}).values():
            if not isinstance(operation, dict):
                continue
            for parameter in operation.get("parameters", []):
                schema = parameter.get("schema") if isinstance(parameter, dict) else None
                if parameter.get("in") != "query" or not isinstance(schema, dict):
                    continue
                if schema.get("type") == "string" and not {"pattern", "enum", "format"} & schema.keys():
                    schema["pattern"] = QUERY_TEXT


class SchemaRules(BasePlugin):
    """Add a marshmallow schema's ``OPENAPI_RULES`` (e.g. ``oneOf``) to its OpenAPI component.

    Some rules bind fields together (``merchant_id`` only with the merchant role); marshmallow
    checks them in a ``validates_schema`` hook, and this states them in the document, so that a
    generated client or a fuzzer knows them as well as the server does.
    """

    def schema_helper(self, name: str, definition: Any, **kwargs: Any) -> dict[str, Any] | None:
        schema = kwargs.get("schema")
        rules: dict[str, Any] | None = getattr(schema, "OPENAPI_RULES", None)
        return rules


class PatternConverter(BaseConverter):
    """A path segment that must match ``regex`` whole; anything else is no route (404)."""

    regex = r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}"


def register_pattern(app: Flask, api: Api, name: str, regex: str) -> None:
    """Add the route converter ``<name:...>`` for segments matching ``regex``, documented as a pattern."""
    converter = type(f"{name.title()}Converter", (PatternConverter,), {"regex": regex})
    app.url_map.converters[name] = converter
    api.register_converter(converter, lambda c: {"type": "string", "pattern": f"^(?:{c.regex})$"})


class IdConverter(IntegerConverter):
    """``<id:name>`` in a route: ASCII digits only, and a value a BIGINT column can hold.

    Werkzeug's ``int`` converter reads any Unicode digit (fullwidth, Arabic-Indic) and any size;
    here anything else is simply no route (404).
    """

    regex = r"[0-9]{1,19}"

    def __init__(self, url_map: Map) -> None:
        super().__init__(url_map, min=0, max=MAX_ID)


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
    body = _read_body()
    if len(body) >= limit:
        try:
            beyond = request.environ["wsgi.input"].read(1)
        except (OSError, ValueError):
            beyond = b"?"  # unreadable past the limit: too large either way
        if beyond:
            raise RequestEntityTooLarge()


def _read_body() -> bytes:
    """Return the request body, answering 400 when the connection cannot deliver it.

    A malformed chunked encoding surfaces from the server's body reader as an OSError or a
    ValueError; it is the client's fault, not the service's.
    """
    try:
        return request.get_data(cache=True)
    except RequestEntityTooLarge:
        raise
    except (OSError, ValueError):
        raise BadRequest(
            "The request body could not be read (bad transfer encoding).", code="body_unreadable"
        ) from None


def _read_form() -> None:
    """Parse a multipart body now (files spool to disk), before the view opens its transaction."""
    try:
        request.files  # noqa: B018  (parsing happens on first access)
    except RequestEntityTooLarge:
        raise
    except (OSError, ValueError, ClientDisconnected):
        raise BadRequest("The multipart body could not be read.", code="body_unreadable") from None


def json_depth(body: bytes) -> int:
    """Return how deeply arrays and objects nest in a JSON text, in linear time, without recursion."""
    depth = deepest = 0
    for bracket in _BRACKET.findall(_JSON_STRING.sub(b'""', body)):
        if bracket in b"[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def _strings(document: object) -> Iterator[str]:
    """Yield every string in a parsed JSON document, keys included, without recursion."""
    stack = [document]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            yield node
        elif isinstance(node, dict):
            yield from node.keys()
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


def _require_sound_json(body: bytes) -> None:
    """Answer 400 to a JSON body that parses badly, nests too deeply or holds unstorable text.

    webargs turns only syntax errors into a 400; nesting past the recursion limit, an integer
    literal beyond Python's digit limit, a NUL (which PostgreSQL cannot store) or a lone
    surrogate (which no encoder can write) would otherwise escape as a 500 further on.
    """
    if json_depth(body) > MAX_JSON_DEPTH:
        raise BadRequest(f"The JSON body nests more than {MAX_JSON_DEPTH} levels deep.", code="json_too_deep")
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        raise BadRequest("The request body is not valid JSON.", code="malformed_json") from None
    for text in _strings(document):
        if "\x00" in text or _SURROGATE.search(text):
            raise BadRequest(
                "A JSON string holds a NUL character or a lone surrogate; send valid Unicode text.",
                code="invalid_text",
            )


def _declared_query_parameters(app: Flask) -> dict[tuple[str, str], frozenset[str]]:
    """Return, per (Flask rule, method), the query parameters the OpenAPI document declares."""
    cached: dict[tuple[str, str], frozenset[str]] | None = app.extensions.get("chopay.query_params")
    if cached is not None:
        return cached
    paths = app.extensions["chopay.api"].spec.to_dict().get("paths", {})
    declared: dict[tuple[str, str], frozenset[str]] = {}
    for rule in app.url_map.iter_rules():
        operations = paths.get(FlaskPlugin.flaskpath2openapi(rule.rule), {})
        for method, operation in operations.items():
            if not isinstance(operation, dict):
                continue
            params = [*operations.get("parameters", []), *operation.get("parameters", [])]
            declared[(rule.rule, method.upper())] = frozenset(
                p["name"] for p in params if p.get("in") == "query"
            )
    app.extensions["chopay.query_params"] = declared
    return declared


def _check_query() -> None:
    """Refuse control characters in the path and query, and query parameters nobody declared."""
    if _CONTROL.search(request.path) or any(
        _CONTROL.search(k) or _CONTROL.search(v) for k, v in request.args.items(multi=True)
    ):
        raise BadRequest("The path or query holds a control character.", code="invalid_character")
    if request.url_rule is None or not request.args:
        return
    method = "GET" if request.method == "HEAD" else request.method
    known = _declared_query_parameters(current_app).get((request.url_rule.rule, method), frozenset())
    unknown = sorted(set(request.args) - known)
    if unknown:
        expected = f" Known parameters: {', '.join(sorted(known))}." if known else " It takes none."
        raise BadRequest(
            f"Unknown query parameter {', '.join(repr(u) for u in unknown)}.{expected}",
            code="unknown_parameter",
            parameters=unknown,
        )


def init_app(app: Flask) -> Api:
    """Create the Api, serve the docs assets and enforce JSON bodies under ``/v1``."""
    app.config.update({k: v for k, v in openapi_config().items() if k not in app.config})
    app.url_map.converters["id"] = IdConverter
    api = Api(app)
    for plugin in (SchemaRules(), ServerResponses(), QueryText()):
        plugin.init_spec(api.spec)
        api.spec.plugins.append(plugin)
    api.register_converter(IdConverter, lambda c: {"type": "integer", "minimum": c.min, "maximum": c.max})
    # <ref:name>: public ids and references (TX-0000000001, CP7K2M9QXA ...).
    register_pattern(app, api, "ref", PatternConverter.regex)
    api.spec.components.security_scheme("bearerAuth", BEARER_SCHEME)
    app.extensions["chopay.api"] = api

    @app.get(DOCS_ASSETS + "<path:filename>")
    def docs_assets(filename: str) -> Response:
        """Serve the Swagger UI assets bundled with the service."""
        return send_from_directory(str(swagger_ui_path), filename, max_age=86400)

    # Registered after chopay.auth's hook: authentication comes before any of this.
    @app.before_request
    def _check_request() -> None:
        if not request.path.startswith(API_PREFIX + "/"):
            return
        _check_query()
        _refuse_oversized_stream()
        if request.method not in {"POST", "PUT", "PATCH"} or not (
            request.content_length or request.headers.get("Transfer-Encoding")
        ):
            return
        if request.mimetype == "application/json":
            _require_sound_json(_read_body())
        elif request.mimetype.startswith("multipart/"):
            _read_form()
        elif request.mimetype.startswith("text/csv"):
            _read_body()
        else:
            raise UnsupportedMediaType(
                f"Send the request body as application/json, not {request.mimetype or 'no type'}."
            )

    return api

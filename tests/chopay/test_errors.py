"""Every error status is an RFC 9457 problem document, and bad input never half-writes."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from tests.chopay.helpers import assert_problem, capture_logs, count_users

Headers = dict[str, str]


def test_malformed_json_is_400_malformed_json(client: FlaskClient, session: Session, admin_headers: Headers):
    before = count_users(session)
    resp = client.post(
        "/v1/users", data='{"name": "Test', content_type="application/json", headers=admin_headers
    )
    body = assert_problem(resp, 400, "malformed_json")
    assert "errors" not in body
    assert count_users(session) == before


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        pytest.param(b"[" * 100_000, "json_too_deep", id="nested-arrays"),
        pytest.param(b'{"a":' * 50_000, "json_too_deep", id="nested-objects"),
        pytest.param(b"[" * 980 + b"]" * 980, "json_too_deep", id="nested-just-under-the-parser-limit"),
        pytest.param(
            b'{"name": "Test", "role": "admin", "merchant_id": ' + b"9" * 5000 + b"}",
            "malformed_json",
            id="huge-int",
        ),
        pytest.param(b'{"name": "\xff\xfe", "role": "admin"}', "malformed_json", id="not-utf8"),
        pytest.param(b'{"name": "Test", "role": "admin"} trailing', "malformed_json", id="trailing-garbage"),
    ],
)
def test_json_the_parser_refuses_is_a_400_not_a_500(
    client: FlaskClient, session: Session, admin_headers: Headers, raw: bytes, code: str
):
    before = count_users(session)
    resp = client.post("/v1/users", data=raw, content_type="application/json", headers=admin_headers)
    assert_problem(resp, 400, code)
    assert count_users(session) == before


def test_brackets_inside_strings_do_not_count_as_nesting(client: FlaskClient, admin_headers: Headers):
    name = "[" * 40 + '\\"{' * 20
    resp = client.post("/v1/users", json={"name": name, "role": "officer"}, headers=admin_headers)
    assert resp.status_code == 201
    assert resp.get_json()["user"]["name"] == name


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b'{"name": "acc\\ud800", "role": "officer"}', id="lone-surrogate"),
        pytest.param(b'{"name": "Test\\u0000Nul", "role": "officer"}', id="nul"),
        pytest.param(b'{"name\\udfff": "Test", "role": "officer"}', id="surrogate-in-a-key"),
        pytest.param(b'[{"a": ["\\ud83d"]}]', id="nested-surrogate"),
    ],
)
def test_text_no_database_can_store_is_a_400(
    client: FlaskClient, session: Session, admin_headers: Headers, raw: bytes
):
    before = count_users(session)
    resp = client.post("/v1/users", data=raw, content_type="application/json", headers=admin_headers)
    assert_problem(resp, 400, "invalid_text")
    assert count_users(session) == before


def test_a_valid_surrogate_pair_is_text(client: FlaskClient, admin_headers: Headers):
    resp = client.post(
        "/v1/users",
        data=b'{"name": "Test \\ud83d\\ude00", "role": "officer"}',
        content_type="application/json",
        headers=admin_headers,
    )
    assert resp.status_code == 201
    assert resp.get_json()["user"]["name"] == "Test \U0001f600"


def test_missing_token_is_401(client: FlaskClient):
    assert_problem(client.get("/v1/users/me"), 401, "token_missing")


def test_wrong_role_is_403(client: FlaskClient, auth_headers: Callable[..., Headers]):
    body = assert_problem(client.get("/v1/users", headers=auth_headers("auditor")), 403, "role_forbidden")
    assert "auditor" in body["detail"]


def test_unknown_route_is_404(client: FlaskClient):
    assert_problem(client.get("/v1/no-such-thing"), 404, "not_found")


def test_unknown_user_is_404_with_its_own_code(client: FlaskClient, admin_headers: Headers):
    assert_problem(client.post("/v1/users/987654/revoke", headers=admin_headers), 404, "user_not_found")


@pytest.mark.parametrize("user_id", [str(2**63), "%EF%BC%91", "%D9%A3", "%C2%B2", "-1"])
def test_user_ids_that_are_not_ascii_bigints_are_no_route(
    client: FlaskClient, admin_headers: Headers, user_id
):
    resp = client.post(f"/v1/users/{user_id}/revoke", headers=admin_headers)
    assert_problem(resp, 404, "not_found")


def test_wrong_method_is_405_with_allowed_methods(client: FlaskClient, admin_headers: Headers):
    resp = client.delete("/v1/users/me", headers=admin_headers)
    body = assert_problem(resp, 405, "method_not_allowed")
    assert "GET" in body["allowed"]
    assert "DELETE" not in body["allowed"]
    assert "GET" in resp.headers["Allow"]


def test_revoking_twice_is_409(client: FlaskClient, admin_headers: Headers, make_token: Callable[..., str]):
    created = client.post(
        "/v1/users", json={"name": "Test Officer", "role": "officer"}, headers=admin_headers
    )
    user_id = created.get_json()["user"]["id"]
    assert client.post(f"/v1/users/{user_id}/revoke", headers=admin_headers).status_code == 200
    resp = client.post(f"/v1/users/{user_id}/revoke", headers=admin_headers)
    assert_problem(resp, 409, "user_already_revoked")


def test_idempotency_key_reuse_is_409(client: FlaskClient, admin_headers: Headers):
    headers = {**admin_headers, "Idempotency-Key": "err-409"}
    client.post("/v1/users", json={"name": "Test One", "role": "officer"}, headers=headers)
    resp = client.post("/v1/users", json={"name": "Test Two", "role": "officer"}, headers=headers)
    assert_problem(resp, 409, "idempotency_key_reused")


@pytest.fixture
def small_app(make_app: Callable[..., Flask]) -> Flask:
    return make_app(max_body_bytes=256)


def _big_user() -> bytes:
    return json.dumps({"name": "Test " + "x" * 100, "role": "officer", "pad": "y" * 400}).encode()


def test_oversized_body_is_413(small_app: Flask, make_token: Callable[..., str]):
    client = small_app.test_client()
    headers = {"Authorization": f"Bearer {make_token('admin')}"}
    resp = client.post("/v1/users", data=_big_user(), content_type="application/json", headers=headers)
    assert_problem(resp, 413, "payload_too_large")
    listed = client.get("/v1/users", headers=headers).get_json()["items"]
    assert [u["role"] for u in listed] == ["admin"]


def test_oversized_body_with_idempotency_key_is_413(small_app: Flask, make_token: Callable[..., str]):
    client = small_app.test_client()
    headers = {"Authorization": f"Bearer {make_token('admin')}", "Idempotency-Key": "big"}
    resp = client.post("/v1/users", data=_big_user(), content_type="application/json", headers=headers)
    assert_problem(resp, 413, "payload_too_large")


def _chunked(client: FlaskClient, body: bytes, headers: Headers):
    """POST ``body`` without a Content-Length, as a server hands a chunked request to the app."""
    return client.post(
        "/v1/users",
        input_stream=io.BytesIO(body),
        content_type="application/json",
        headers={**headers, "Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )


def test_oversized_chunked_body_is_413_not_a_truncated_parse(
    small_app: Flask, make_token: Callable[..., str]
):
    client = small_app.test_client()
    headers = {"Authorization": f"Bearer {make_token('admin')}"}
    # The first 256 bytes are a complete, valid request; only the whole body is too large.
    valid = json.dumps({"name": "Test Cut", "role": "officer"}).encode()
    body = valid + b" " * (256 - len(valid)) + b"garbage beyond the limit"
    assert_problem(_chunked(client, body, headers), 413, "payload_too_large")
    names = [u["name"] for u in client.get("/v1/users", headers=headers).get_json()["items"]]
    assert "Test Cut" not in names


def test_chunked_body_within_the_limit_is_accepted(small_app: Flask, make_token: Callable[..., str]):
    client = small_app.test_client()
    headers = {"Authorization": f"Bearer {make_token('admin')}"}
    resp = _chunked(client, json.dumps({"name": "Test Chunk", "role": "officer"}).encode(), headers)
    assert resp.status_code == 201, resp.get_data(as_text=True)
    assert resp.get_json()["user"]["name"] == "Test Chunk"


@pytest.mark.parametrize(
    ("data", "content_type"),
    [
        ('{"name": "Test", "role": "admin"}', "text/plain"),
        ("name=Test&role=admin", "application/x-www-form-urlencoded"),
    ],
)
def test_wrong_content_type_is_415(
    client: FlaskClient, session: Session, admin_headers: Headers, data: str, content_type: str
):
    before = count_users(session)
    resp = client.post("/v1/users", data=data, content_type=content_type, headers=admin_headers)
    body = assert_problem(resp, 415, "unsupported_media_type")
    assert content_type in body["detail"]
    assert count_users(session) == before


@pytest.mark.parametrize(
    ("payload", "field", "message"),
    [
        ({"name": 42, "role": "officer"}, "name", "Not a valid string."),
        ({"name": "Test", "role": "officer", "colour": "blue"}, "colour", "Unknown field."),
        ({"name": "Test", "role": "king"}, "role", "Must be one of"),
        ({"name": "Test", "role": "merchant", "merchant_id": "seven"}, "merchant_id", "Not a valid integer."),
        ({"name": "Test", "role": "merchant", "merchant_id": 1.5}, "merchant_id", "Not a valid integer."),
        ({"name": "Test", "role": "merchant", "merchant_id": True}, "merchant_id", "Not a valid integer."),
        ({"name": "Test", "role": "merchant", "merchant_id": 2**63}, "merchant_id", "less than or equal"),
        ({"name": "Test", "role": "merchant", "merchant_id": 0}, "merchant_id", "greater than or equal"),
        ({"role": "officer"}, "name", "Missing data for required field."),
        ({"name": "", "role": "officer"}, "name", "Length must be between"),
        ({"name": "x" * 121, "role": "officer"}, "name", "Length must be between"),
    ],
)
def test_invalid_fields_are_422_with_field_errors(
    client: FlaskClient,
    session: Session,
    admin_headers: Headers,
    payload: dict[str, Any],
    field: str,
    message: str,
):
    before = count_users(session)
    resp = client.post("/v1/users", json=payload, headers=admin_headers)
    body = assert_problem(resp, 422, "validation_failed")
    errors = body["errors"]["json"]
    assert list(errors) == [field]
    assert any(message in m for m in errors[field]), errors
    assert field in body["detail"]
    assert count_users(session) == before


def test_422_lists_every_bad_field(client: FlaskClient, admin_headers: Headers):
    resp = client.post("/v1/users", json={"name": 1, "role": "king", "extra": True}, headers=admin_headers)
    body = assert_problem(resp, 422, "validation_failed")
    assert set(body["errors"]["json"]) == {"name", "role", "extra"}


def test_json_that_is_not_an_object_is_422(client: FlaskClient, admin_headers: Headers):
    resp = client.post("/v1/users", json=["Test", "officer"], headers=admin_headers)
    body = assert_problem(resp, 422, "validation_failed")
    assert body["errors"] == {"json": {"_schema": ["Invalid input type."]}}


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({"name": "Test", "role": "merchant"}, "merchant_required"),
        ({"name": "Test", "role": "auditor", "merchant_id": 5}, "merchant_not_allowed"),
    ],
)
def test_domain_rules_are_422_with_their_own_code(
    client: FlaskClient, session: Session, admin_headers: Headers, payload: dict[str, Any], code: str
):
    before = count_users(session)
    assert_problem(client.post("/v1/users", json=payload, headers=admin_headers), 422, code)
    assert count_users(session) == before


@pytest.fixture
def crashing_app(make_app: Callable[..., Flask]) -> Flask:
    """Return an app with a test-only route that fails with an unexpected exception."""
    application = make_app()

    @application.get("/test-only/crash")
    def crash() -> str:
        raise RuntimeError("secret internal detail 7f3a")

    return application


def test_unexpected_exception_is_500_without_traceback_and_is_logged(crashing_app: Flask):
    client = crashing_app.test_client()
    with capture_logs() as logs:
        resp = client.get("/test-only/crash", headers={"X-Request-ID": "crash-req-1"})
    body = assert_problem(resp, 500, "internal_error")
    text = resp.get_data(as_text=True)
    for leak in ("Traceback", "RuntimeError", "secret internal detail", 'File "', ".py"):
        assert leak not in text
    assert body["request_id"] == "crash-req-1"
    errors = logs.named("chopay.errors")
    assert len(errors) == 1
    assert errors[0]["level"] == "error"
    assert errors[0]["request_id"] == "crash-req-1"
    assert "Traceback (most recent call last)" in errors[0]["exc"]
    assert 'raise RuntimeError("secret internal detail 7f3a")' in errors[0]["exc"]  # the source line
    assert "builtins.RuntimeError: (message withheld" in errors[0]["exc"]
    # The exception's message is not logged: messages often quote the value that failed.
    assert "RuntimeError: secret" not in errors[0]["exc"]


def test_error_responses_all_carry_a_request_id(client: FlaskClient, admin_headers: Headers):
    responses = [
        client.get("/v1/users/me"),
        client.get("/nowhere"),
        client.delete("/v1/users/me", headers=admin_headers),
        client.post("/v1/users", data="{", content_type="application/json", headers=admin_headers),
        client.post("/v1/users", json={}, headers=admin_headers),
    ]
    ids = [r.headers["X-Request-ID"] for r in responses]
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    assert len(set(ids)) == len(ids)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
user_bodies = st.fixed_dictionaries(
    {},
    optional={
        "name": json_values | st.text(max_size=130),
        "role": json_values
        | st.sampled_from(["admin", "officer", "approver", "auditor", "merchant", "Admin"]),
        "merchant_id": json_values | st.integers(min_value=-(2**70), max_value=2**70),
        "extra": json_values,
    },
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=user_bodies | json_values)
def test_arbitrary_json_never_causes_a_500_or_a_partial_write(
    client: FlaskClient, session: Session, admin_headers: Headers, payload: object
):
    before = count_users(session)
    resp = client.post("/v1/users", json=payload, headers=admin_headers)
    assert resp.status_code in {201, 400, 422}, resp.get_data(as_text=True)
    if resp.status_code == 201:
        assert count_users(session) == before + 1
    else:
        assert resp.mimetype == "application/problem+json"
        assert count_users(session) == before


@pytest.mark.parametrize(
    ("name", "code"),
    [("   ", "name_required"), ("Test\x07Bell", "name_invalid")],
)
def test_names_the_schema_refuses_are_refused_by_the_domain_too(
    client: FlaskClient, session: Session, admin_headers: Headers, name: str, code: str
):
    # The API states the rule in its schema (422 validation_failed); the command line and other
    # callers of the service get the domain's own code.
    from chopay.errors import Unprocessable
    from chopay.users import create_user

    body = assert_problem(
        client.post("/v1/users", json={"name": name, "role": "officer"}, headers=admin_headers),
        422,
        "validation_failed",
    )
    assert "name" in body["errors"]["json"]
    with pytest.raises(Unprocessable) as err:
        create_user(session, name=name, role="officer")
    assert err.value.code == code

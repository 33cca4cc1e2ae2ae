"""JSON log lines: one per request with its id, method, route, status and duration; no secrets."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from chopay import logs as chopay_logs
from tests.chopay.helpers import LogCapture, capture_logs

HEX_ID = re.compile(r"[0-9a-f]{32}")


def _access(logs: LogCapture) -> list[dict[str, Any]]:
    return logs.named("chopay.access")


def test_one_json_line_per_request(client: FlaskClient, logs: LogCapture, admin_headers):
    me = client.get("/v1/users/me", headers=admin_headers).get_json()
    resp = client.get("/v1/users?limit=7", headers=admin_headers)
    (_, line) = _access(logs)
    assert line["msg"] == "request"
    assert line["level"] == "info"
    assert line["method"] == "GET"
    assert line["route"] == "/v1/users"  # the query string is not logged
    assert "limit" not in json.dumps(line)
    assert line["status"] == 200
    assert isinstance(line["duration_ms"], float)
    assert line["duration_ms"] >= 0
    assert line["request_id"] == resp.headers["X-Request-ID"]
    assert line["user_id"] == me["id"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["ts"])
    assert all("\n" not in raw for raw in logs.lines)


def test_error_requests_are_logged_with_their_status(client: FlaskClient, logs: LogCapture):
    client.get("/v1/users/me")
    client.get("/missing")
    statuses = [(line["route"], line["status"]) for line in _access(logs)]
    assert statuses == [("/v1/users/me", 401), ("unmatched", 404)]


def test_a_token_pasted_into_a_path_is_not_logged(client: FlaskClient, logs: LogCapture, admin_headers):
    token = admin_headers["Authorization"].removeprefix("Bearer ")
    client.post(f"/v1/users/{token}/revoke", headers=admin_headers)
    client.get(f"/v1/ledger/transactions/{token}", headers=admin_headers)
    client.get(f"/v1/{token}")
    assert [line["route"] for line in _access(logs)] == [
        "unmatched",
        "/v1/ledger/transactions/<ref:tx_id>",
        "unmatched",
    ]
    assert all(token[3:] not in raw for raw in logs.lines)


def test_a_500_traceback_carries_no_statement_parameters(tmp_path):
    import sqlalchemy as sa

    from chopay import create_app, db, migrate
    from chopay.config import from_env

    url = f"sqlite:///{tmp_path / 'params.db'}"
    migrate.upgrade(url)
    application = create_app(from_env({}, database_url=url, data_dir=tmp_path, log_level="WARNING"))

    phone = "0901" + "234567"  # a client value; only the source line of the call may be logged

    @application.get("/test-only/bad-sql")
    def bad_sql() -> str:
        db.session().execute(sa.text("SELECT * FROM nowhere WHERE x = :v"), {"v": phone})
        return "unreachable"

    try:
        with capture_logs() as captured:
            resp = application.test_client().get("/test-only/bad-sql")
    finally:
        db.get_db(application).engine.dispose()
    assert resp.status_code == 500
    (error,) = captured.named("chopay.errors")
    assert "Traceback" in error["exc"]
    assert "sqlalchemy.exc.OperationalError: (message withheld" in error["exc"]
    assert phone not in "\n".join(captured.lines)


def test_service_urls_are_logged_without_passwords():
    from chopay.logs import redact_url

    assert redact_url("redis://:s3cret@queue.internal:6379/0") == "redis://:***@queue.internal:6379/0"
    assert redact_url("redis://user:s3cret@h/1") == "redis://user:***@h/1"
    assert redact_url("redis://h:6379/0") == "redis://h:6379/0"
    assert "s3cret" not in redact_url("rediss://:s3cret@[::1]:6380/0")


@pytest.mark.parametrize("incoming", ["abc-123", "req.2026:01_x", "A" * 128])
def test_a_sane_request_id_is_accepted_and_echoed(client: FlaskClient, logs: LogCapture, incoming: str):
    resp = client.get("/healthz", headers={"X-Request-ID": incoming})
    assert resp.headers["X-Request-ID"] == incoming
    assert _access(logs)[0]["request_id"] == incoming


@pytest.mark.parametrize(
    "incoming",
    ["", "has space", "A" * 129, "new\\nline", 'quote"d', "<script>", "ümlaut"],
)
def test_an_odd_request_id_is_replaced(client: FlaskClient, logs: LogCapture, incoming: str):
    resp = client.get("/healthz", headers={"X-Request-ID": incoming})
    generated = resp.headers["X-Request-ID"]
    assert HEX_ID.fullmatch(generated)
    assert _access(logs)[0]["request_id"] == generated


def test_request_id_is_echoed_on_every_response(client: FlaskClient, admin_headers):
    cases = [
        client.get("/healthz", headers={"X-Request-ID": "r-1"}),
        client.get("/v1/users/me", headers={"X-Request-ID": "r-2"}),
        client.get("/nowhere", headers={"X-Request-ID": "r-3"}),
        client.post(
            "/v1/users",
            data="{",
            content_type="application/json",
            headers={**admin_headers, "X-Request-ID": "r-4"},
        ),
        client.post(
            "/v1/users", data="x", content_type="text/plain", headers={**admin_headers, "X-Request-ID": "r-5"}
        ),
        client.get("/metrics", headers={"X-Request-ID": "r-6"}),
        client.get("/openapi.json", headers={"X-Request-ID": "r-7"}),
    ]
    assert [r.headers["X-Request-ID"] for r in cases] == [f"r-{i}" for i in range(1, 8)]


def test_generated_ids_differ_per_request(client: FlaskClient):
    ids = {client.get("/healthz").headers["X-Request-ID"] for _ in range(5)}
    assert len(ids) == 5


@pytest.fixture
def leaky_app(make_app: Callable[..., Flask]) -> Flask:
    """Return an app with a test-only route that crashes while holding the token."""
    from chopay import auth

    application = make_app()

    @application.get("/test-only/crash-authenticated")
    @auth.roles(*auth.ANY_ROLE)
    def crash():
        raise RuntimeError("crashed while serving an authenticated request")

    return application


def test_tokens_never_appear_in_logs(leaky_app: Flask, make_token: Callable[..., str]):
    client = leaky_app.test_client()
    token = make_token("admin")
    headers = {"Authorization": f"Bearer {token}"}
    with capture_logs() as logs:
        created = client.post("/v1/users", json={"name": "Test Log", "role": "officer"}, headers=headers)
        new_token = created.get_json()["token"]
        user_id = created.get_json()["user"]["id"]
        client.get("/v1/users/me", headers={"Authorization": f"Bearer {new_token}"})
        client.post(f"/v1/users/{user_id}/revoke", headers=headers)
        client.get("/v1/users/me", headers={"Authorization": f"Bearer {new_token}"})  # revoked
        client.get("/v1/users/me", headers={"Authorization": f"Bearer {token}x"})  # malformed
        client.get("/v1/users", headers={"Authorization": f"Basic {token}"})
        client.get("/test-only/crash-authenticated", headers=headers)
    output = "\n".join(logs.lines)
    assert len(logs.named("chopay.access")) == 7
    assert len(logs.named("chopay.errors")) == 1
    for secret in (token, new_token, token[8:], new_token[8:]):
        assert secret not in output
    assert "Authorization" not in output


def test_configure_writes_json_lines_to_stderr(capsys: pytest.CaptureFixture[str]):
    logger = logging.getLogger("chopay")
    saved = (logger.handlers[:], logger.level)
    try:
        chopay_logs.configure("info")
        logging.getLogger("chopay.test").info("hello %s", "world", extra={"batch": 7})
        logging.getLogger("chopay.test").debug("not at info")
    finally:
        logger.handlers[:], level = saved
        logger.setLevel(level)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1
    line = json.loads(lines[0])
    assert line["msg"] == "hello world"
    assert line["batch"] == 7
    assert line["logger"] == "chopay.test"
    assert line["level"] == "info"
    assert "request_id" not in line  # outside a request there is none
    assert logger.propagate is False

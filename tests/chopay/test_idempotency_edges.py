"""``Idempotency-Key`` at its edges: what a replay carries, what makes two requests differ, and
which statuses are stored.

Test-only routes outside ``/v1`` reach the decorator without the API's body checks, so that
each test sees exactly what the decorator does.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import pytest
import sqlalchemy as sa
from flask import Flask, Response, jsonify, request
from flask.testing import FlaskClient
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from chopay import db
from chopay.idempotency import MAX_KEY_LENGTH, IdempotencyRecord, idempotent
from chopay.users import create_user
from tests.chopay.helpers import assert_problem, count_users

KEY = {"Idempotency-Key": "edge-1"}


@pytest.fixture
def edge_app(make_app: Callable[..., Flask]) -> Flask:
    """Return an app with test-only idempotent routes; ``app.extensions["calls"]`` counts runs."""
    application = make_app()
    calls: list[str] = []
    application.extensions["calls"] = calls

    @application.post("/test-only/headers")
    @idempotent
    def headers() -> Response:
        calls.append("headers")
        resp = jsonify(ok=True)
        resp.status_code = 201
        resp.headers["Location"] = "/test-only/things/1"
        resp.headers["ETag"] = '"v1"'
        resp.headers["X-Not-Kept"] = "per response"
        return resp

    @application.post("/test-only/echo")
    @idempotent
    def echo() -> Response:
        calls.append("echo")
        return jsonify(got=request.get_json(silent=True))

    @application.post("/test-only/count")
    @idempotent
    def count() -> tuple[Response, int]:
        calls.append("count")
        return jsonify(calls=len(calls)), 201

    @application.post("/test-only/status/<int:code>")
    @idempotent
    def status(code: int) -> tuple[Response, int]:
        calls.append(f"status {code}")
        # Writes something, to show whether the request's unit of work was kept.
        create_user(db.session(), name=f"Test Status {code} {len(calls)}", role="officer")
        return jsonify(code=code, calls=len(calls)), code

    @application.post("/test-only/list")
    @idempotent(secrets=("token",))
    def listing() -> tuple[Response, int]:
        calls.append("list")
        return jsonify([{"token": "cp_not_a_secret_here"}]), 201

    @application.post("/test-only/csv")
    @idempotent(secrets=("token",))
    def csv() -> Response:
        calls.append("csv")
        return Response("token\ncp_in_a_file\n", status=201, mimetype="text/csv")

    @application.post("/test-only/two-secrets")
    @idempotent(secrets=("token", "recovery", "absent"))
    def two_secrets() -> tuple[Response, int]:
        calls.append("two-secrets")
        return jsonify(token="cp_shown_once", recovery="rc_shown_once", absent=None, name="Test"), 201

    @application.post("/test-only/upload")
    @idempotent
    def upload() -> tuple[Response, int]:
        calls.append("upload")
        files = {name: [f.filename for f in request.files.getlist(name)] for name in request.files}
        return jsonify(files=files, notes=request.form.getlist("note")), 201

    return application


def _calls(app: Flask) -> list[str]:
    calls: list[str] = app.extensions["calls"]
    return calls


def test_without_a_key_the_view_runs_each_time_and_nothing_is_stored(edge_app: Flask, session: Session):
    client = edge_app.test_client()
    first, second = client.post("/test-only/count"), client.post("/test-only/count")
    assert (first.status_code, second.status_code) == (201, 201)
    assert first.get_json() == {"calls": 1}
    assert second.get_json() == {"calls": 2}
    assert "Idempotent-Replayed" not in second.headers
    assert session.scalar(sa.select(sa.func.count()).select_from(IdempotencyRecord)) == 0


def test_a_replay_carries_location_and_etag_and_no_other_header(edge_app: Flask):
    client = edge_app.test_client()
    first = client.post("/test-only/headers", headers=KEY)
    replay = client.post("/test-only/headers", headers=KEY)
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert _calls(edge_app) == ["headers"]
    assert replay.headers["Location"] == first.headers["Location"]
    assert replay.headers["ETag"] == first.headers["ETag"] == '"v1"'
    assert "X-Not-Kept" in first.headers
    assert "X-Not-Kept" not in replay.headers


def test_the_view_still_reads_the_body_that_was_fingerprinted(edge_app: Flask):
    client = edge_app.test_client()
    first = client.post("/test-only/echo", json={"amount": 45000}, headers=KEY)
    assert first.get_json() == {"got": {"amount": 45000}}
    assert client.post("/test-only/echo", json={"amount": 45000}, headers=KEY).get_json() == first.get_json()
    assert_problem(
        client.post("/test-only/echo", json={"amount": 1}, headers=KEY), 409, "idempotency_key_reused"
    )


def test_query_and_media_type_are_told_apart_where_their_texts_would_run_together(edge_app: Flask):
    client = edge_app.test_client()
    # "a=1" + "text/csv" and "a=1text/csv" + "" are the same characters, but not the same request.
    assert (
        client.post("/test-only/count?a=1", data=b"", content_type="text/csv", headers=KEY).status_code == 201
    )
    other = client.post("/test-only/count?a=1text/csv", data=b"", headers=KEY)
    assert_problem(other, 409, "idempotency_key_reused")
    assert _calls(edge_app) == ["count"]


def _upload(client: FlaskClient, fields: list[tuple[str, object]]) -> TestResponse:
    data: dict[str, object] = {}
    for name, value in fields:
        data.setdefault(name, []).append(value)  # type: ignore[union-attr]
    return client.post("/test-only/upload", data=data, headers=KEY, content_type="multipart/form-data")


def _file(content: bytes, filename: str = "rows.csv") -> tuple[io.BytesIO, str]:
    return io.BytesIO(content), filename


def test_every_value_of_a_repeated_form_field_is_part_of_the_request(edge_app: Flask):
    client = edge_app.test_client()
    first = _upload(client, [("note", "a"), ("note", "b")])
    assert first.get_json()["notes"] == ["a", "b"]
    assert _upload(client, [("note", "a"), ("note", "b")]).headers["Idempotent-Replayed"] == "true"
    assert_problem(_upload(client, [("note", "a"), ("note", "c")]), 409, "idempotency_key_reused")


def test_every_file_of_a_field_and_every_file_field_is_part_of_the_request(edge_app: Flask):
    client = edge_app.test_client()

    def send(second: bytes) -> TestResponse:
        return _upload(
            client,
            [
                ("file", _file(b"one\n", "a.csv")),
                ("file", _file(second, "b.csv")),
                ("other", _file(b"three\n", "c.csv")),
            ],
        )

    first = send(b"two\n")
    assert first.status_code == 201
    assert first.get_json()["files"] == {"file": ["a.csv", "b.csv"], "other": ["c.csv"]}
    assert send(b"two\n").headers["Idempotent-Replayed"] == "true"
    assert_problem(send(b"changed\n"), 409, "idempotency_key_reused")
    assert _calls(edge_app) == ["upload"]


def test_a_files_name_is_part_of_the_request(edge_app: Flask):
    client = edge_app.test_client()
    assert _upload(client, [("file", _file(b"one\n", "march.csv"))]).status_code == 201
    assert_problem(_upload(client, [("file", _file(b"one\n", "april.csv"))]), 409, "idempotency_key_reused")


@pytest.mark.parametrize(
    ("code", "writes_kept"), [(201, 1), (299, 1), (399, 1), (400, 0), (404, 0), (499, 0)]
)
def test_an_answer_below_500_is_stored_and_replayed_and_a_4xx_keeps_no_write(
    edge_app: Flask, session: Session, code: int, writes_kept: int
):
    client = edge_app.test_client()
    before = count_users(session)
    first = client.post(f"/test-only/status/{code}", headers=KEY)
    replay = client.post(f"/test-only/status/{code}", headers=KEY)
    assert first.status_code == replay.status_code == code
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.get_json() == first.get_json() == {"code": code, "calls": 1}
    assert _calls(edge_app) == [f"status {code}"]
    # A success commits what the view wrote; a failure's writes are rolled back, its answer kept.
    assert count_users(session) == before + writes_kept


@pytest.mark.parametrize("code", [500, 503])
def test_a_5xx_answer_is_not_stored_so_a_retry_runs_again(edge_app: Flask, session: Session, code: int):
    client = edge_app.test_client()
    before = count_users(session)
    first = client.post(f"/test-only/status/{code}", headers=KEY)
    retry = client.post(f"/test-only/status/{code}", headers=KEY)
    assert first.status_code == retry.status_code == code
    assert "Idempotent-Replayed" not in retry.headers
    assert retry.get_json() == {"code": code, "calls": 2}
    assert count_users(session) == before
    assert session.scalar(sa.select(sa.func.count()).select_from(IdempotencyRecord)) == 0


@pytest.mark.parametrize("path", ["/test-only/list", "/test-only/csv"])
def test_an_answer_with_no_secret_field_is_stored_as_it_is(edge_app: Flask, path: str):
    client = edge_app.test_client()
    first = client.post(path, headers=KEY)
    replay = client.post(path, headers=KEY)
    assert first.status_code == replay.status_code == 201
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.get_data() == first.get_data()
    assert replay.mimetype == first.mimetype
    assert "Idempotent-Secret-Withheld" not in replay.headers


def test_every_secret_shown_is_withheld_and_named(edge_app: Flask):
    client = edge_app.test_client()
    first = client.post("/test-only/two-secrets", headers=KEY)
    replay = client.post("/test-only/two-secrets", headers=KEY)
    assert first.get_json()["token"] == "cp_shown_once"
    assert replay.get_json() == {"token": None, "recovery": None, "absent": None, "name": "Test"}
    assert replay.headers["Idempotent-Secret-Withheld"] == "token, recovery"  # not the absent one


def test_the_header_is_documented_on_every_idempotent_operation(client: FlaskClient):
    spec = client.get("/openapi.json").get_json()
    documented = [
        param
        for item in spec["paths"].values()
        for operation in item.values()
        if isinstance(operation, dict)
        for param in operation.get("parameters", [])
        if param.get("name") == "Idempotency-Key"
    ]
    assert documented  # POST /v1/users, payment intents, batches ...
    expected = {
        "in": "header",
        "name": "Idempotency-Key",
        "required": False,
        "schema": {
            "type": "string",
            "minLength": 1,
            "maxLength": MAX_KEY_LENGTH,
            "pattern": "^[ -~]*[!-~][ -~]*$",
        },
        "description": "Make the request safe to retry: the same key and body return the first response.",
    }
    assert all(param == expected for param in documented)

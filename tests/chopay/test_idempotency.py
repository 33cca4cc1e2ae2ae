"""``Idempotency-Key`` on POST: replay, reuse, concurrent first use, failures and stale claims."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable

import pytest
import sqlalchemy as sa
from flask import Flask, jsonify
from flask.testing import FlaskClient
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from chopay import idempotency
from chopay.db import get_db
from chopay.idempotency import IdempotencyRecord, idempotent
from chopay.users import create_user
from tests.chopay.helpers import assert_problem, count_users

Headers = dict[str, str]
OFFICER = {"name": "Test Idem", "role": "officer"}


def _with_key(headers: Headers, key: str) -> Headers:
    return {**headers, "Idempotency-Key": key}


def test_replay_returns_the_stored_response(client: FlaskClient, session: Session, admin_headers: Headers):
    headers = _with_key(admin_headers, "replay-1")
    before = count_users(session)
    first = client.post("/v1/users", json=OFFICER, headers=headers)
    assert first.status_code == 201
    assert "Idempotent-Replayed" not in first.headers
    second = client.post("/v1/users", json=OFFICER, headers=headers)
    assert second.status_code == 201
    assert second.headers["Idempotent-Replayed"] == "true"
    # The same answer, but the token is shown only once: the replay withholds it.
    assert second.get_json() == {**first.get_json(), "token": None}
    assert second.headers["Idempotent-Secret-Withheld"] == "token"
    assert second.mimetype == first.mimetype
    assert count_users(session) == before + 1
    # The replay carries its own request id; only the stored body and status are repeated.
    assert second.headers["X-Request-ID"] != first.headers["X-Request-ID"]


def test_reuse_with_a_different_body_is_409(client: FlaskClient, session: Session, admin_headers: Headers):
    headers = _with_key(admin_headers, "reuse-1")
    assert client.post("/v1/users", json=OFFICER, headers=headers).status_code == 201
    before = count_users(session)
    resp = client.post("/v1/users", json={**OFFICER, "name": "Test Other"}, headers=headers)
    assert_problem(resp, 409, "idempotency_key_reused")
    assert count_users(session) == before


def test_reuse_on_another_endpoint_is_409(client: FlaskClient, admin_headers: Headers):
    headers = _with_key(admin_headers, "reuse-path")
    created = client.post("/v1/users", json=OFFICER, headers=headers).get_json()
    resp = client.post(f"/v1/users/{created['user']['id']}/revoke", headers=headers)
    # Revoke ignores the header (it is naturally idempotent through its 409), so it revokes.
    assert resp.status_code == 200


def test_keys_are_scoped_to_the_user(client: FlaskClient, session: Session, make_token: Callable[..., str]):
    first = {"Authorization": f"Bearer {make_token('admin')}", "Idempotency-Key": "shared"}
    second = {"Authorization": f"Bearer {make_token('admin')}", "Idempotency-Key": "shared"}
    before = count_users(session)
    a = client.post("/v1/users", json=OFFICER, headers=first)
    b = client.post("/v1/users", json=OFFICER, headers=second)
    assert a.status_code == b.status_code == 201
    assert "Idempotent-Replayed" not in b.headers
    assert a.get_json()["token"] != b.get_json()["token"]
    assert count_users(session) == before + 2


def test_a_failed_first_request_is_stored_and_replayed(
    client: FlaskClient, session: Session, admin_headers: Headers
):
    headers = _with_key(admin_headers, "failed-1")
    before = count_users(session)
    bad = {"name": "Test", "role": "emperor"}
    first = client.post("/v1/users", json=bad, headers=headers)
    assert_problem(first, 422, "validation_failed")
    second = client.post("/v1/users", json=bad, headers=headers)
    assert second.status_code == 422
    assert second.headers["Idempotent-Replayed"] == "true"
    assert second.mimetype == "application/problem+json"
    assert second.get_json()["errors"] == first.get_json()["errors"]
    # Fixing the body does not recycle the key: it names the failed request.
    assert_problem(client.post("/v1/users", json=OFFICER, headers=headers), 409, "idempotency_key_reused")
    assert count_users(session) == before


def test_a_domain_error_is_stored_and_replayed(client: FlaskClient, admin_headers: Headers):
    headers = _with_key(admin_headers, "domain-1")
    body = {"name": "Test Stall", "role": "merchant"}
    first = client.post("/v1/users", json=body, headers=headers)
    assert_problem(first, 422, "merchant_required")
    second = client.post("/v1/users", json=body, headers=headers)
    assert second.headers["Idempotent-Replayed"] == "true"
    assert second.get_json()["code"] == "merchant_required"


@pytest.mark.parametrize("key", ["", "   ", "k" * 201, "tab\there"])
def test_invalid_keys_are_400(client: FlaskClient, session: Session, admin_headers: Headers, key: str):
    before = count_users(session)
    resp = client.post("/v1/users", json=OFFICER, headers=_with_key(admin_headers, key))
    assert_problem(resp, 400, "idempotency_key_invalid")
    assert count_users(session) == before


def test_a_key_of_200_characters_is_accepted(client: FlaskClient, admin_headers: Headers):
    headers = _with_key(admin_headers, "k" * 200)
    assert client.post("/v1/users", json=OFFICER, headers=headers).status_code == 201
    assert client.post("/v1/users", json=OFFICER, headers=headers).headers["Idempotent-Replayed"] == "true"


def _records(session: Session) -> list[IdempotencyRecord]:
    return list(session.scalars(sa.select(IdempotencyRecord)))


def test_the_record_holds_key_request_hash_and_response(
    client: FlaskClient, session: Session, admin_headers: Headers
):
    resp = client.post("/v1/users", json=OFFICER, headers=_with_key(admin_headers, "stored-1"))
    (record,) = _records(session)
    assert record.key == "stored-1"
    assert record.scope.startswith("user:")
    assert len(record.request_hash) == 64
    assert record.status == 201
    # Never the secret: a replay record holds the response without the token.
    token = resp.get_json()["token"]
    assert token.encode() not in record.body
    assert token[3:11].encode() not in record.body
    assert json.loads(record.body) == {**resp.get_json(), "token": None}


@pytest.fixture
def flaky_app(make_app: Callable[..., Flask]) -> Flask:
    """Return an app with a test-only idempotent route that crashes on its first call."""
    application = make_app()
    calls: list[int] = []

    @application.post("/test-only/flaky")
    @idempotent
    def flaky():
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("deliberate crash")
        return jsonify(calls=len(calls)), 201

    return application


def test_a_crash_releases_the_key_so_the_client_can_retry(flaky_app: Flask, session: Session):
    client = flaky_app.test_client()
    headers = {"Idempotency-Key": "crash-1"}
    assert_problem(client.post("/test-only/flaky", json={}, headers=headers), 500, "internal_error")
    assert _records(session) == []
    retry = client.post("/test-only/flaky", json={}, headers=headers)
    assert retry.status_code == 201
    assert "Idempotent-Replayed" not in retry.headers
    assert retry.get_json() == {"calls": 2}
    replay = client.post("/test-only/flaky", json={}, headers=headers)
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.get_json() == {"calls": 2}


def _user_id(client: FlaskClient, headers: Headers) -> int:
    return int(client.get("/v1/users/me", headers=headers).get_json()["id"])


def _fingerprint(app: Flask, path: str, payload: dict[str, str]) -> str:
    with app.test_request_context(path, method="POST", json=payload):
        return idempotency.request_fingerprint()


def test_a_query_string_is_part_of_the_request(flaky_app: Flask):
    client = flaky_app.test_client()
    headers = {"Idempotency-Key": "query-1"}
    client.post("/test-only/flaky", json={}, headers=headers)  # the deliberate crash
    assert client.post("/test-only/flaky?x=1", json={}, headers=headers).status_code == 201
    assert_problem(
        client.post("/test-only/flaky?x=2", json={}, headers=headers), 409, "idempotency_key_reused"
    )
    assert (
        client.post("/test-only/flaky?x=1", json={}, headers=headers).headers["Idempotent-Replayed"] == "true"
    )


def test_a_claim_lives_only_as_long_as_its_request_transaction(committed_app: Flask):
    """A request that dies mid-flight leaves no claim behind: the retry runs at once."""
    database = get_db(committed_app)
    with database.unit_of_work() as s:
        issued = create_user(s, name="Test Crasher", role="admin")
    headers = {"Authorization": f"Bearer {issued.token}", "Idempotency-Key": "dies-1"}
    client = committed_app.test_client()
    # The first request claims the key in its transaction, then its process "dies": the
    # connection goes away without a commit, as it would on SIGKILL.
    crashed = database.engine.connect()
    crashed.begin()
    record = idempotency.IdempotencyRecord(
        scope=f"user:{issued.user.id}", key="dies-1", request_hash="0" * 64, status=0, body=b"", headers="{}"
    )
    crashed.execute(sa.insert(IdempotencyRecord).values(**_columns(record)))
    waiting: list[int] = []
    retry = threading.Thread(
        target=lambda: waiting.append(client.post("/v1/users", json=OFFICER, headers=headers).status_code)
    )
    retry.start()
    retry.join(timeout=1.0)
    # On PostgreSQL the retry waits on the uncommitted key; on SQLite on the write lock.
    assert retry.is_alive()
    crashed.invalidate()  # the process died: its transaction is rolled back with the connection
    retry.join(timeout=30)
    assert waiting == [201]
    with database.session() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(IdempotencyRecord)) == 1
        (kept,) = s.scalars(sa.select(IdempotencyRecord))
        assert kept.status == 201


def _columns(record: IdempotencyRecord) -> dict[str, object]:
    return {
        c.key: getattr(record, c.key) for c in IdempotencyRecord.__table__.columns if c.key != "created_at"
    }


def test_concurrent_first_use_executes_once(committed_app: Flask):
    with get_db(committed_app).unit_of_work() as s:
        token = create_user(s, name="Test Racer", role="admin").token
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": "race-1"}
    threads_n = 8
    barrier = threading.Barrier(threads_n)
    results: list[tuple[int, bytes, str | None]] = []
    failures: list[BaseException] = []
    lock = threading.Lock()

    def post() -> None:
        client = committed_app.test_client()
        try:
            barrier.wait(timeout=30)
            resp = client.post("/v1/users", json=OFFICER, headers=headers)
            with lock:
                results.append((resp.status_code, resp.get_data(), resp.headers.get("Idempotent-Replayed")))
        except BaseException as exc:  # surfaced below; a thread cannot fail the test itself
            with lock:
                failures.append(exc)

    threads = [threading.Thread(target=post) for _ in range(threads_n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    assert failures == []
    assert len(results) == threads_n
    assert {status for status, _, _ in results} == {201}
    # One answer with the token, every replay the same answer without it.
    first = [json.loads(body) for _, body, flag in results if flag is None]
    replays = {body for _, body, flag in results if flag == "true"}
    assert len(first) == 1
    assert [json.loads(b) for b in replays] == [{**first[0], "token": None}]
    assert sorted(flag or "" for _, _, flag in results) == [""] + ["true"] * (threads_n - 1)
    with get_db(committed_app).sessionmaker() as s:
        names = s.scalars(sa.text("SELECT name FROM users ORDER BY id")).all()
    assert names == ["Test Racer", "Test Idem"]


def test_a_multipart_body_is_part_of_the_request(make_app: Callable[..., Flask], make_token):
    import io

    application = make_app()

    @application.post("/v1/test-only/upload")
    @idempotent
    def upload():
        from flask import request

        return jsonify(size=len(request.files["file"].read()), note=request.form.get("note")), 201

    client = application.test_client()
    headers = {"Idempotency-Key": "upload-1"}

    def send(content: bytes, note: str = "a") -> TestResponse:
        data = {"file": (io.BytesIO(content), "f.csv"), "note": note}
        return client.post(
            "/v1/test-only/upload", data=data, headers=headers, content_type="multipart/form-data"
        )

    first = send(b"one,two\n")
    assert first.status_code == 201
    assert first.get_json() == {"size": 8, "note": "a"}
    assert send(b"one,two\n").headers["Idempotent-Replayed"] == "true"
    assert_problem(send(b"one,three\n"), 409, "idempotency_key_reused")
    assert_problem(send(b"one,two\n", note="b"), 409, "idempotency_key_reused")

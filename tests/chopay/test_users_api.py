"""``/v1/users``: create, list (cursor-paginated), show oneself, revoke."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from chopay.errors import Conflict, NotFound, Unprocessable
from chopay.pagination import decode_cursor, encode_cursor
from chopay.users import User, create_user, ensure_admin, get_user, revoke_user
from tests.chopay.helpers import assert_problem, count_users

Headers = dict[str, str]


def _me(client: FlaskClient, headers: Headers) -> dict[str, Any]:
    resp = client.get("/v1/users/me", headers=headers)
    assert resp.status_code == 200
    body: dict[str, Any] = resp.get_json()
    return body


def test_create_user_returns_the_token_once(client: FlaskClient, session: Session, admin_headers: Headers):
    before = count_users(session)
    resp = client.post("/v1/users", json={"name": "Test Officer", "role": "officer"}, headers=admin_headers)
    assert resp.status_code == 201
    body = resp.get_json()
    token = body["token"]
    assert re.fullmatch(r"cp_[A-Za-z0-9_-]{43}", token)
    user = body["user"]
    assert user["name"] == "Test Officer"
    assert user["role"] == "officer"
    assert user["merchant_id"] is None
    assert user["active"] is True
    assert user["revoked_at"] is None
    assert token.startswith(user["token_hint"])
    assert dt.datetime.fromisoformat(user["created_at"]).tzinfo is not None
    assert count_users(session) == before + 1
    # The creator is recorded, and the token works straight away.
    admin_id = _me(client, admin_headers)["id"]
    stored = session.get(User, user["id"])
    assert stored is not None
    assert stored.created_by == admin_id
    assert _me(client, {"Authorization": f"Bearer {token}"})["id"] == user["id"]
    # The token is never shown again.
    listed = client.get("/v1/users", headers=admin_headers).get_data(as_text=True)
    assert token not in listed
    assert "token_hash" not in listed
    assert '"token"' not in listed


def test_merchant_role_requires_a_merchant(client: FlaskClient, session: Session, admin_headers: Headers):
    before = count_users(session)
    resp = client.post("/v1/users", json={"name": "Test Stall", "role": "merchant"}, headers=admin_headers)
    assert_problem(resp, 422, "merchant_required")
    assert count_users(session) == before
    resp = client.post(
        "/v1/users", json={"name": "Test Stall", "role": "merchant", "merchant_id": 77}, headers=admin_headers
    )
    assert resp.status_code == 201
    assert resp.get_json()["user"]["merchant_id"] == 77


@pytest.mark.parametrize("role", ["admin", "officer", "approver", "auditor", "merchant"])
def test_me_shows_the_user_of_the_token_for_every_role(
    client: FlaskClient, make_token: Callable[..., str], role: str
):
    merchant_id = 31 if role == "merchant" else None
    token = make_token(role, name=f"Test {role.title()}", merchant_id=merchant_id)
    me = _me(client, {"Authorization": f"Bearer {token}"})
    assert me["role"] == role
    assert me["name"] == f"Test {role.title()}"
    assert me["merchant_id"] == merchant_id
    assert me["active"] is True
    assert "token" not in me
    assert "token_hash" not in me


def test_list_pages_through_every_user_with_a_cursor(client: FlaskClient, admin_headers: Headers):
    for i in range(6):
        resp = client.post(
            "/v1/users", json={"name": f"Test Page {i}", "role": "auditor"}, headers=admin_headers
        )
        assert resp.status_code == 201
    seen: list[int] = []
    cursor = None
    pages = 0
    while True:
        query = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        resp = client.get("/v1/users", query_string=query, headers=admin_headers)
        assert resp.status_code == 200
        body = resp.get_json()
        assert set(body) == {"items", "next_cursor"}
        assert len(body["items"]) <= 3
        seen += [u["id"] for u in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
        assert pages < 10
    assert pages == 3  # 7 users (the admin and six), 3 per page
    assert seen == sorted(seen)
    assert len(seen) == len(set(seen)) == 7


def test_list_defaults_to_one_page_with_no_cursor(client: FlaskClient, admin_headers: Headers):
    body = client.get("/v1/users", headers=admin_headers).get_json()
    assert body["next_cursor"] is None
    assert [u["role"] for u in body["items"]] == ["admin"]


def test_exact_fit_page_has_no_next_cursor(client: FlaskClient, admin_headers: Headers):
    client.post("/v1/users", json={"name": "Test Two", "role": "auditor"}, headers=admin_headers)
    body = client.get("/v1/users?limit=2", headers=admin_headers).get_json()
    assert len(body["items"]) == 2
    assert body["next_cursor"] is None


@pytest.mark.parametrize("cursor", ["not-a-cursor", "!!!", "%C3%A9", "1.5", "-1", "1" * 20, "%EF%BC%91"])
def test_a_cursor_the_schema_does_not_allow_is_422(client: FlaskClient, admin_headers: Headers, cursor: str):
    resp = client.get(f"/v1/users?cursor={cursor}", headers=admin_headers)
    body = assert_problem(resp, 422, "validation_failed")
    assert "cursor" in body["errors"]["query"]


@pytest.mark.parametrize("cursor", ["9223372036854775807", "9999999999999999999"])
def test_every_cursor_the_schema_allows_is_understood(
    client: FlaskClient, admin_headers: Headers, cursor: str
):
    resp = client.get(f"/v1/users?cursor={cursor}", headers=admin_headers)
    assert resp.status_code == 200
    assert resp.get_json() == {"items": [], "next_cursor": None}


@pytest.mark.parametrize("limit", ["0", "501", "-1", "ten"])
def test_limit_out_of_range_is_422(client: FlaskClient, admin_headers: Headers, limit: str):
    resp = client.get(f"/v1/users?limit={limit}", headers=admin_headers)
    body = assert_problem(resp, 422, "validation_failed")
    assert "limit" in body["errors"]["query"]


def test_cursor_round_trip():
    for value in (0, 1, 2**63 - 1):
        assert decode_cursor(encode_cursor(value)) == value
    assert decode_cursor(None) is None
    assert decode_cursor(str(2**64)) == 2**63 - 1


def test_revoke_marks_the_user_inactive(client: FlaskClient, admin_headers: Headers):
    created = client.post("/v1/users", json={"name": "Test Gone", "role": "approver"}, headers=admin_headers)
    user_id = created.get_json()["user"]["id"]
    resp = client.post(f"/v1/users/{user_id}/revoke", headers=admin_headers)
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["id"] == user_id
    assert body["active"] is False
    assert dt.datetime.fromisoformat(body["revoked_at"]).tzinfo is not None
    listed = {u["id"]: u for u in client.get("/v1/users", headers=admin_headers).get_json()["items"]}
    assert listed[user_id]["active"] is False
    assert_problem(
        client.post(f"/v1/users/{user_id}/revoke", headers=admin_headers), 409, "user_already_revoked"
    )


def test_revoke_of_an_unknown_user_is_404(client: FlaskClient, admin_headers: Headers):
    assert_problem(client.post("/v1/users/424242/revoke", headers=admin_headers), 404, "user_not_found")
    assert_problem(client.post("/v1/users/0/revoke", headers=admin_headers), 404, "user_not_found")
    assert_problem(client.post("/v1/users/not-a-number/revoke", headers=admin_headers), 404, "not_found")


def test_create_user_service_rules(session: Session):
    with pytest.raises(Unprocessable) as info:
        create_user(session, name="Test", role="superuser")
    assert info.value.code == "role_unknown"
    with pytest.raises(Unprocessable) as info:
        create_user(session, name="x" * 121, role="auditor")
    assert info.value.code == "name_too_long"
    with pytest.raises(Unprocessable) as info:
        create_user(session, name="Test", role="merchant", merchant_id=2**63)
    assert info.value.code == "merchant_id_invalid"
    with pytest.raises(Unprocessable) as info:
        create_user(session, name="Test\tTab", role="auditor")
    assert info.value.code == "name_invalid"
    assert count_users(session) == 0


def test_names_are_stored_as_nfc(session: Session):
    decomposed = "Test Nguye\u0302\u0303n"  # e + combining circumflex + combining tilde
    issued = create_user(session, name=f"  {decomposed}  ", role="officer")
    stored = session.scalar(sa.select(User.name).where(User.id == issued.user.id))
    assert stored == "Test Nguy\u1ec5n"


def test_get_and_revoke_user_services(session: Session):
    issued = create_user(session, name="Test Svc", role="auditor")
    assert get_user(session, issued.user.id).name == "Test Svc"
    for missing in (0, -1, 10**6, 2**64):
        with pytest.raises(NotFound):
            get_user(session, missing)
        with pytest.raises(NotFound):
            revoke_user(session, missing)
    assert revoke_user(session, issued.user.id).revoked_at is not None
    with pytest.raises(Conflict):
        revoke_user(session, issued.user.id)


def test_ensure_admin_creates_the_first_admin_only(session: Session):
    first = ensure_admin(session, "Test First Admin")
    assert first is not None
    assert first.user.role == "admin"
    assert ensure_admin(session) is None
    revoke_user(session, first.user.id)
    # With no active admin left, a new one can be made so the service is never locked out.
    assert ensure_admin(session) is not None

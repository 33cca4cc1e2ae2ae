"""Bearer tokens: their format, their storage, and every way a request can fail to authenticate."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from chopay import auth
from chopay.errors import Unauthorized
from chopay.users import Role, User, authenticate, create_user, hash_token, is_well_formed, new_token
from tests.chopay.helpers import assert_problem

TOKEN_RE = re.compile(r"cp_[A-Za-z0-9_-]{43}")


def test_token_is_cp_prefix_and_32_random_bytes():
    tokens = {new_token() for _ in range(50)}
    assert len(tokens) == 50
    for token in tokens:
        assert TOKEN_RE.fullmatch(token)
        assert len(base64.urlsafe_b64decode(token[3:] + "=")) == 32
        assert is_well_formed(token)


@pytest.mark.parametrize(
    "token",
    [
        "",
        "cp_",
        "cp_short",
        "xx_" + "a" * 43,
        "cp_" + "a" * 42,
        "cp_" + "a" * 44,
        "cp_" + "a" * 42 + "!",
        "cp_" + "é" * 43,  # alphanumeric to str.isalnum, but never produced by token_urlsafe
        "cp_" + "٣" * 43,  # an Arabic-Indic digit
    ],
)
def test_tokens_of_the_wrong_shape_are_not_well_formed(token: str):
    assert not is_well_formed(token)


def test_database_stores_only_the_hash(session: Session):
    issued = create_user(session, name="Test Hash", role="auditor")
    row = session.execute(sa.select(User.__table__).where(User.__table__.c.id == issued.user.id)).one()
    assert row.token_hash == hashlib.sha256(issued.token.encode()).digest() == hash_token(issued.token)
    stored = " ".join(repr(v) for v in row)
    secret_part = issued.token[len(row.token_hint) :]
    assert issued.token not in stored
    assert secret_part not in stored
    # The hint is a short prefix: it cannot stand in for the token.
    assert len(row.token_hint) <= 8
    assert issued.token.startswith(row.token_hint)


def test_every_users_column_is_free_of_any_token(client: FlaskClient, session: Session, admin_headers):
    tokens = [admin_headers["Authorization"].removeprefix("Bearer ")]
    for role in ("officer", "approver"):
        resp = client.post("/v1/users", json={"name": f"Test {role}", "role": role}, headers=admin_headers)
        tokens.append(resp.get_json()["token"])
    dump = repr(session.execute(sa.select(User.__table__)).all())
    for token in tokens:
        assert token[8:] not in dump


def test_no_authorization_header_is_token_missing(client: FlaskClient):
    body = assert_problem(client.get("/v1/users/me"), 401, "token_missing")
    assert "Bearer" in body["detail"]


@pytest.mark.parametrize(
    "header",
    [
        "Basic dGVzdDp0ZXN0",
        "Bearer",
        "Bearer   ",
        "Token cp_" + "a" * 43,
        "cp_" + "a" * 43,
        "Bearer cp_tooshort",
        "Bearer " + "x" * 46,
        "Bearer cp_" + "a" * 42 + "!",
    ],
)
def test_malformed_header_or_token_is_token_malformed(client: FlaskClient, header: str):
    assert_problem(client.get("/v1/users/me", headers={"Authorization": header}), 401, "token_malformed")


def test_scheme_is_case_insensitive(client: FlaskClient, make_token: Callable[..., str]):
    token = make_token("auditor")
    resp = client.get("/v1/users/me", headers={"Authorization": f"bearer {token}"})
    assert resp.status_code == 200
    assert resp.get_json()["role"] == "auditor"


def test_unknown_token_is_token_invalid(client: FlaskClient, make_token: Callable[..., str]):
    make_token("admin")
    resp = client.get("/v1/users/me", headers={"Authorization": f"Bearer {new_token()}"})
    assert_problem(resp, 401, "token_invalid")


def test_revoked_token_is_refused_at_once(client: FlaskClient, admin_headers, make_token: Callable[..., str]):
    created = client.post("/v1/users", json={"name": "Test Leaver", "role": "officer"}, headers=admin_headers)
    token = created.get_json()["token"]
    user_id = created.get_json()["user"]["id"]
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/v1/users/me", headers=headers).status_code == 200
    assert client.post(f"/v1/users/{user_id}/revoke", headers=admin_headers).status_code == 200
    assert_problem(client.get("/v1/users/me", headers=headers), 401, "token_revoked")


def test_revoked_admin_cannot_act(client: FlaskClient, make_token: Callable[..., str]):
    first = {"Authorization": f"Bearer {make_token('admin')}"}
    second_token = make_token("admin")
    second = {"Authorization": f"Bearer {second_token}"}
    second_id = client.get("/v1/users/me", headers=second).get_json()["id"]
    assert client.post(f"/v1/users/{second_id}/revoke", headers=first).status_code == 200
    resp = client.post("/v1/users", json={"name": "Test Sneaky", "role": "admin"}, headers=second)
    assert_problem(resp, 401, "token_revoked")


@pytest.mark.parametrize("role", ["officer", "approver", "auditor", "merchant"])
def test_admin_endpoints_refuse_other_roles(client: FlaskClient, auth_headers, role: str):
    headers = auth_headers(role)
    assert_problem(client.get("/v1/users", headers=headers), 403, "role_forbidden")
    resp = client.post("/v1/users", json={"name": "Test", "role": "admin"}, headers=headers)
    assert_problem(resp, 403, "role_forbidden")
    assert_problem(client.post("/v1/users/1/revoke", headers=headers), 403, "role_forbidden")


def test_authentication_comes_before_validation(client: FlaskClient):
    # Without a token, a bad body reveals nothing about the schema.
    resp = client.post("/v1/users", json={"name": 1}, headers={"Authorization": f"Bearer {new_token()}"})
    assert_problem(resp, 401, "token_invalid")


def test_authenticate_refuses_with_precise_codes(session: Session):
    issued = create_user(session, name="Test Auth", role="approver")
    assert authenticate(session, issued.token).id == issued.user.id
    cases = {"token_malformed": "cp_nope", "token_invalid": new_token()}
    for code, token in cases.items():
        with pytest.raises(Unauthorized) as info:
            authenticate(session, token)
        assert info.value.code == code


def test_roles_decorator_rejects_unknown_roles():
    with pytest.raises(ValueError, match="superuser"):
        auth.roles("admin", "superuser")


def test_roles_are_documented_in_openapi(app: Flask):
    spec = app.test_client().get("/openapi.json").get_json()
    assert "Roles: admin." in spec["paths"]["/v1/users"]["get"]["description"]
    me = spec["paths"]["/v1/users/me"]["get"]["description"]
    assert all(r.value in me for r in Role)
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"


def test_authenticating_a_request_is_one_read_outside_any_transaction(committed_app: Flask):
    from chopay.db import get_db

    database = get_db(committed_app)
    with database.unit_of_work() as s:
        issued = create_user(s, name="Test Reader", role="auditor")
    lookups: list[bool] = []

    @sa.event.listens_for(database.engine, "before_cursor_execute")
    def _seen(conn, cursor, statement, *args) -> None:
        if "FROM users" in statement:
            lookups.append(bool(getattr(conn.connection.driver_connection, "autocommit", True)))

    r = committed_app.test_client().get("/v1/users/me", headers={"Authorization": f"Bearer {issued.token}"})
    assert r.status_code == 200
    assert (r.json["id"], r.json["role"]) == (issued.user.id, "auditor")
    assert len(lookups) == 1
    if database.engine.dialect.name == "postgresql":
        assert lookups == [True]  # autocommit: no BEGIN and no ROLLBACK around the one SELECT

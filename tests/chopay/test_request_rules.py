"""The rules every /v1 request passes, in order: authentication, the query, the body, the schema."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from tests.chopay.helpers import assert_problem, count_users

Headers = dict[str, str]

BODIES = [
    pytest.param({"data": "{not json", "content_type": "application/json"}, id="malformed-json"),
    pytest.param({"data": b"[" * 5000, "content_type": "application/json"}, id="too-deep"),
    pytest.param(
        {"data": "name=x", "content_type": "application/x-www-form-urlencoded"}, id="wrong-media-type"
    ),
    pytest.param({"json": {"name": 1}}, id="invalid-fields"),
]


@pytest.mark.parametrize("body", BODIES)
def test_an_anonymous_caller_gets_401_whatever_the_body(client: FlaskClient, body):
    assert_problem(client.post("/v1/users", **body), 401, "token_missing")
    assert_problem(client.post("/v1/users?statsu=1", **body), 401, "token_missing")


@pytest.mark.parametrize("body", BODIES)
def test_a_caller_without_the_role_gets_403_whatever_the_body(
    client: FlaskClient, auth_headers: Callable[..., Headers], body
):
    assert_problem(client.post("/v1/users", headers=auth_headers("auditor"), **body), 403, "role_forbidden")


def test_an_unknown_query_parameter_is_named(client: FlaskClient, admin_headers: Headers):
    body = assert_problem(
        client.get("/v1/users?statsu=paid", headers=admin_headers), 400, "unknown_parameter"
    )
    assert body["parameters"] == ["statsu"]
    assert "'statsu'" in body["detail"]
    assert "cursor, limit" in body["detail"]


def test_an_endpoint_without_parameters_takes_none(client: FlaskClient, admin_headers: Headers):
    body = assert_problem(
        client.get("/v1/users/me?verbose=1", headers=admin_headers), 400, "unknown_parameter"
    )
    assert "takes none" in body["detail"]


def test_declared_parameters_are_accepted(client: FlaskClient, admin_headers: Headers):
    assert client.get("/v1/users?limit=2", headers=admin_headers).status_code == 200


@pytest.mark.parametrize("query", ["limit=1%00", "li%0Amit=1", "limit=%7F"])
def test_control_characters_in_the_query_are_a_400(client: FlaskClient, admin_headers: Headers, query: str):
    assert_problem(client.get(f"/v1/users?{query}", headers=admin_headers), 400, "invalid_character")


def test_the_document_states_the_control_character_rule_for_every_free_text_query(client: FlaskClient):
    document = client.get("/openapi.json").json
    free_text = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if not isinstance(operation, dict):  # the path item's own "parameters" list
                continue
            for parameter in operation.get("parameters", []):
                schema = parameter.get("schema", {})
                if parameter["in"] == "query" and schema.get("type") == "string":
                    assert {"pattern", "enum", "format"} & schema.keys(), (method, path, parameter["name"])
                    if schema.get("pattern") == r"^[^\x00-\x1f\x7f]*$":
                        free_text.append(parameter["name"])
    assert "name" in free_text  # /v1/beneficiaries?name=, a free-text search


def test_the_order_is_auth_then_query_then_body(client: FlaskClient, admin_headers: Headers):
    resp = client.post("/v1/users?x=1", data="{", content_type="application/json", headers=admin_headers)
    assert_problem(resp, 400, "unknown_parameter")
    resp = client.post("/v1/users", data="{", content_type="text/plain", headers=admin_headers)
    assert_problem(resp, 415, "unsupported_media_type")


def test_titles_are_one_style_whoever_raises_the_error(client: FlaskClient, admin_headers: Headers):
    titles = {
        client.get("/nowhere").get_json()["title"],  # werkzeug's 404
        client.get("/v1/users/987654/revoke", headers=admin_headers).get_json()["title"],  # 405
        client.post("/v1/users/987654/revoke", headers=admin_headers).get_json()["title"],  # chopay's 404
        client.post("/v1/users", json={}, headers=admin_headers).get_json()["title"],  # webargs' 422
        client.post("/v1/users", json={"name": "x", "role": "merchant"}, headers=admin_headers).get_json()[
            "title"
        ],
    }
    assert titles == {"Not found", "Method not allowed", "Unprocessable request"}
    assert all(t[0].isupper() and t[1:] == t[1:].lower() for t in titles)


def test_nobody_revokes_their_own_token(client: FlaskClient, session: Session, admin_headers: Headers):
    me = client.get("/v1/users/me", headers=admin_headers).get_json()
    assert_problem(
        client.post(f"/v1/users/{me['id']}/revoke", headers=admin_headers), 409, "cannot_revoke_self"
    )
    assert client.get("/v1/users/me", headers=admin_headers).status_code == 200
    assert count_users(session) >= 1

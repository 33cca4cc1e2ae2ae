"""The pages' foundation: sign-in and sign-out, the session cookie, CSRF, roles, headers, errors."""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from flask import Flask, url_for
from flask.testing import FlaskClient
from hypothesis import given
from hypothesis import strategies as st

from chopay.db import get_db
from chopay.users import revoke_user
from chopay.web.sessions import WebSession
from chopay.web.views import local_target
from tests.chopay.helpers import assert_problem
from tests.chopay.webclient import csrf_token, sign_in


def test_sign_in_keeps_a_flagged_session_cookie_and_never_the_token(client, make_token):
    token = make_token("auditor", name="Nguyễn Văn Thử")
    resp = client.post("/login", data={"token": token, "csrf_token": csrf_token(client)})
    assert resp.status_code == 303
    assert resp.headers["Location"] == "/"
    cookie = resp.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    assert "Secure" not in cookie  # served over plain http here
    assert token not in cookie
    home = client.get("/")
    assert home.status_code == 200
    page = home.get_data(as_text=True)
    assert "Nguyễn Văn Thử" in page
    assert token not in page


def test_the_cookie_is_secure_over_https(client, make_token):
    token = make_token("auditor")
    page = client.get("/login", base_url="https://chopay.example").get_data(as_text=True)
    csrf = page.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]
    resp = client.post(
        "/login",
        data={"token": token, "csrf_token": csrf},
        base_url="https://chopay.example",
        headers={"Referer": "https://chopay.example/login"},
    )
    assert resp.status_code == 303
    assert "Secure" in resp.headers["Set-Cookie"]


def test_the_cookie_is_secure_behind_a_proxy_that_ends_tls(make_app, make_token):
    client = make_app(proxy_hops=1).test_client()
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.7"}
    page = client.get("/login", headers=forwarded).get_data(as_text=True)
    csrf = page.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]
    resp = client.post(
        "/login",
        data={"token": make_token("auditor"), "csrf_token": csrf},
        headers={**forwarded, "Referer": "https://localhost/login"},
    )
    assert resp.status_code == 303, resp.get_data(as_text=True)
    assert "Secure" in resp.headers["Set-Cookie"]


@pytest.mark.parametrize(
    ("token", "message"),
    [
        ("cp_" + "x" * 43, "Mã này không được biết đến."),
        ("not-a-token", "Đây không phải mã chopay: mã bắt đầu bằng cp_."),
    ],
)
def test_a_bad_token_is_refused_without_a_session(client, token, message):
    resp = client.post("/login", data={"token": token, "csrf_token": csrf_token(client)})
    assert resp.status_code == 401
    page = resp.get_data(as_text=True)
    assert message in page
    assert token not in page  # the password field is not filled in again
    assert client.get("/").status_code == 302


def test_an_empty_token_is_asked_for(client):
    resp = client.post("/login", data={"token": "", "csrf_token": csrf_token(client)})
    assert resp.status_code == 400
    assert "Hãy nhập mã của bạn." in resp.get_data(as_text=True)


def test_a_form_without_its_csrf_token_is_refused(client, make_token):
    token = make_token("auditor")
    client.get("/login")
    resp = client.post("/login", data={"token": token})
    assert resp.status_code == 400
    assert resp.mimetype == "text/html"
    assert "Biểu mẫu đã hết hạn" in resp.get_data(as_text=True)
    assert client.get("/").status_code == 302  # not signed in
    forged = client.post("/login", data={"token": token, "csrf_token": "forged"})
    assert forged.status_code == 400


def test_sign_out_ends_the_session_on_the_server(app: Flask, client: FlaskClient, make_token):
    sign_in(client, make_token("auditor"))
    stolen = client.get_cookie("chopay_session")
    assert stolen is not None
    resp = client.post("/logout", data={"csrf_token": csrf_token(client, "/")})
    assert resp.status_code == 303
    assert client.get("/").status_code == 302
    with get_db(app).read_session() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(WebSession)) == 0
    # The cookie copied before sign-out opens nothing any more.
    other = app.test_client()
    other.set_cookie("chopay_session", stolen.value)
    assert other.get("/").status_code == 302


def test_sign_out_needs_the_csrf_token(client, make_token):
    sign_in(client, make_token("auditor"))
    assert client.post("/logout").status_code == 400
    assert client.get("/").status_code == 200


def test_a_revoked_token_ends_its_sessions(app, client, make_token):
    sign_in(client, make_token("auditor", name="Test Revoked"))
    with get_db(app).unit_of_work() as s:
        user_id = s.scalar(sa.text("SELECT id FROM users WHERE name = 'Test Revoked'"))
        revoke_user(s, user_id)
    assert client.get("/").status_code == 302


def test_a_new_session_starts_at_sign_in(client, make_token):
    client.get("/login")
    before = client.get_cookie("chopay_session")
    sign_in(client, make_token("auditor"))
    after = client.get_cookie("chopay_session")
    assert before is not None
    assert after is not None
    assert before.value != after.value


def test_sign_in_goes_back_to_the_page_asked_for(client, make_token):
    resp = client.get("/?x=1")
    assert resp.status_code == 302
    assert resp.headers["Location"].startswith("/login?next=")
    page = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert 'value="/?x=1"' in page
    signed = client.post(
        "/login", data={"token": make_token("auditor"), "csrf_token": csrf_token(client), "next": "/?x=1"}
    )
    assert signed.headers["Location"] == "/?x=1"


@pytest.mark.parametrize(
    "target", ["https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:alert(1)", ""]
)
def test_sign_in_never_redirects_off_the_site(target):
    assert local_target(target, "/") == "/"


def test_pages_carry_security_headers(client):
    resp = client.get("/login")
    csp = resp.headers["Content-Security-Policy"]
    assert "script-src 'nonce-" in csp
    assert "unsafe-inline" not in csp
    assert "object-src 'none'" in csp
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["Referrer-Policy"] == "same-origin"
    nonce = csp.split("'nonce-")[1].split("'")[0]
    page = resp.get_data(as_text=True)
    assert page.count("<script") == page.count(f'nonce="{nonce}"')
    assert client.get("/login").headers["Content-Security-Policy"] != csp  # a nonce per response


def test_unknown_pages_get_the_404_page_and_the_api_keeps_problem_json(client):
    page = client.get("/no/such/page", headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert page.status_code == 404
    assert page.mimetype == "text/html"
    assert "Không tìm thấy trang" in page.get_data(as_text=True)
    assert_problem(client.get("/v1/no-such-thing"), 404, "not_found")
    assert_problem(client.get("/no/such/page"), 404, "not_found")  # not asking for HTML
    assert_problem(client.get("/v1/no-such-thing", headers={"Accept": "text/html"}), 404, "not_found")


def test_the_api_sets_no_cookie(client, admin_headers):
    resp = client.get("/v1/users", headers=admin_headers)
    assert resp.status_code == 200
    assert "Set-Cookie" not in resp.headers


def test_pages_stay_out_of_the_openapi_document(client):
    paths = client.get("/openapi.json").get_json()["paths"]
    assert all(p.startswith("/v1/") for p in paths)
    assert "/login" not in paths


def test_the_language_switch_turns_pages_english(client):
    assert "Đăng nhập" in client.get("/login").get_data(as_text=True)
    resp = client.post("/lang", data={"lang": "en", "next": "/login", "csrf_token": csrf_token(client)})
    assert resp.status_code == 303
    assert resp.headers["Location"] == "/login"
    page = client.get("/login").get_data(as_text=True)
    assert '<html lang="en">' in page
    assert "Sign in" in page


def test_the_language_survives_sign_in(client, make_token):
    client.post("/lang", data={"lang": "en", "next": "/", "csrf_token": csrf_token(client)})
    sign_in(client, make_token("auditor"))
    assert '<html lang="en">' in client.get("/").get_data(as_text=True)


def test_navigation_shows_what_the_role_may_open(app: Flask, make_token: Callable[..., str]):
    entries = app.extensions["chopay.web.nav"]
    assert entries, "no page registers a navigation entry"
    with app.test_request_context():
        urls = {e.endpoint: url_for(e.endpoint) for e in entries}
    for role in ("admin", "officer", "approver", "auditor"):
        client = sign_in(app.test_client(), make_token(role))
        page = client.get("/").get_data(as_text=True)
        nav = page.split('<nav aria-label="')[1].split("</nav>")[0]
        links = set(re.findall(r'href="([^"]+)"', nav))
        assert links == {urls[e.endpoint] for e in entries if role in e.roles}, role


@given(st.text(max_size=40))
def test_a_sign_in_target_is_always_a_path_on_this_site(target):
    chosen = local_target(target, "/")
    assert chosen == "/" or chosen == target
    parts = urlsplit(chosen)
    assert chosen.startswith("/")
    assert not chosen.startswith("//")
    assert not parts.scheme
    assert not parts.netloc
    assert all(c.isprintable() and not c.isspace() for c in chosen)


def test_a_target_with_a_line_break_is_not_followed(client, make_token):
    form = {"token": make_token("auditor"), "csrf_token": csrf_token(client), "next": "/x\r\nSet-Cookie: a"}
    signed = client.post("/login", data=form)
    assert signed.status_code == 303
    assert signed.headers["Location"] == "/"


def test_a_form_too_large_gets_the_error_page(make_app):
    client = make_app(max_body_bytes=1000).test_client()
    resp = client.post("/login", data={"token": "x" * 5000})
    assert resp.status_code == 413
    assert resp.mimetype == "text/html"
    assert "Quá lớn" in resp.get_data(as_text=True)

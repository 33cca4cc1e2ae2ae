"""Helpers of the page tests: read a page's CSRF token and sign a test client in."""

from __future__ import annotations

import re

from flask.testing import FlaskClient

_CSRF = re.compile(r'name="csrf_token"(?: type="hidden")? value="([^"]+)"')


def csrf_token(client: FlaskClient, path: str = "/login") -> str:
    """Return the CSRF token of the first form on ``path``."""
    resp = client.get(path)
    assert resp.status_code == 200, resp.status_code
    found = _CSRF.search(resp.get_data(as_text=True))
    assert found is not None, "the page has no form with a CSRF token"
    return found.group(1)


def sign_in(client: FlaskClient, token: str) -> FlaskClient:
    """Sign ``client`` in with ``token`` through the login form; fail if that does not work."""
    resp = client.post("/login", data={"token": token, "csrf_token": csrf_token(client)})
    assert resp.status_code == 303, resp.get_data(as_text=True)
    return client

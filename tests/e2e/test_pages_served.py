"""The pages as `chopay serve` serves them: templates, static files and catalogues are installed,
and the sign-in cookie works on every worker process (they share its key from the keys dir)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode

import pytest

from .serving import Service, serving

CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    with serving(tmp_path_factory.mktemp("pages") / "var", CHOPAY_WEB_WORKERS="2") as running:
        yield running


def _cookie(headers: dict[str, str]) -> str:
    jar = SimpleCookie()
    jar.load(headers["set-cookie"])
    return f"chopay_session={jar['chopay_session'].value}"


def test_sign_in_works_across_worker_processes(service: Service):
    login = service.request("GET", "/login", headers={"Accept": "text/html"})
    assert login.status == 200
    assert "Đăng nhập" in login.body.decode()
    assert "script-src 'nonce-" in login.headers["content-security-policy"]
    cookie = _cookie(login.headers)
    found = CSRF.search(login.body.decode())
    assert found is not None
    token = (service.data_dir / "admin-token").read_text().strip()
    body = urlencode({"token": token, "csrf_token": found.group(1)}).encode()
    signed = service.request(
        "POST",
        "/login",
        body=body,
        headers={"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie},
    )
    assert signed.status == 303, signed.body[:500]
    session = _cookie(signed.headers)
    assert "HttpOnly" in signed.headers["set-cookie"]
    for _ in range(8):  # two workers answer these in turn; each reads the same cookie key
        home = service.request("GET", "/", headers={"Cookie": session})
        assert home.status == 200
        assert "Xin chào, admin" in home.body.decode()
    keys = sorted(p.name for p in Path(service.data_dir / "keys").iterdir())
    assert "web-session.key" in keys


def test_static_files_and_the_404_page_are_served(service: Service):
    css = service.request("GET", "/static/chopay.css")
    assert css.status == 200
    assert css.headers["content-type"].startswith("text/css")
    assert css.headers["x-content-type-options"] == "nosniff"
    missing = service.request("GET", "/no-such-page", headers={"Accept": "text/html"})
    assert missing.status == 404
    assert "Không tìm thấy trang" in missing.body.decode()

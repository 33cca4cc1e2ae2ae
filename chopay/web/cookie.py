"""The pages' session cookie: Flask's signed cookie, holding only a random session id.

What the cookie carries is the server-side session's id (:mod:`chopay.web.sessions`), the
form's CSRF secret and the chosen language: nothing that identifies a person or grants access
by itself once the server has ended the session. It is HttpOnly and SameSite=Strict, and Secure
whenever the page was served over https (``request.is_secure``; behind a proxy that ends TLS,
``CHOPAY_PROXY_HOPS`` makes the forwarded scheme count).

The signing key is ``$CHOPAY_KEYS_DIR/web-session.key``, created on the first page request if
missing; hosts behind one load balancer share the keys directory, as they do the data keys.
"""

from __future__ import annotations

import contextlib
import secrets
from pathlib import Path

from flask import Flask, request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from flask.wrappers import Request

from chopay.cli.keys import write_secret

SECRET_FILE = "web-session.key"
NOT_PAGES = ("/v1/", "/openapi.json", "/docs", "/healthz", "/readyz", "/metrics")
"""Paths that are not pages: the API, its document and docs, and the operations probes."""


def is_page_path(path: str) -> bool:
    """Tell whether ``path`` is a page's rather than the API's or an operations probe's."""
    return path != "/v1" and not path.startswith(NOT_PAGES)


def load_secret(keys_dir: Path) -> str:
    """Return the cookie signing key under ``keys_dir``, creating it if there is none yet."""
    path = keys_dir / SECRET_FILE
    with contextlib.suppress(FileExistsError):  # made earlier, or by another process just now
        write_secret(path, secrets.token_urlsafe(48) + "\n")
    return path.read_text().strip()


class SessionCookie(SecureCookieSessionInterface):
    """Flask's signed session cookie, Secure over https, keyed from the keys directory."""

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if not is_page_path(request.path):
            return None  # the API and the probes have no session: Flask gives them a null one
        if not app.secret_key:
            app.secret_key = load_secret(app.config["CHOPAY"].keys_dir)
        return super().open_session(app, request)

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(request.is_secure) or super().get_cookie_secure(app)

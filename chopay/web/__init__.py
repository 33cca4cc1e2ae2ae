"""The web pages' shared machinery: sign-in session, roles, language, layout and security headers.

Features keep their pages in their own ``web.py`` (a plain Flask blueprint, so the pages stay
out of ``/openapi.json``) with templates under ``templates/<package>/``, and register them with
:func:`register_pages`, giving the navigation entries they add. A page view declares who may
open it with :func:`requires`:

* nobody signed in: a redirect to ``/login``;
* signed in with another role: the 404 page, as for a page that does not exist, so a page
  tells nobody what they may not see.

Every form carries a CSRF token (Flask-WTF), checked on every POST to a page; the API under
``/v1`` authenticates with bearer tokens and needs none. Pages answer with a
Content-Security-Policy that runs only scripts carrying the response's nonce, and with
``X-Content-Type-Options`` and ``Referrer-Policy``. Errors on pages are HTML pages in the
layout; errors under ``/v1`` stay ``application/problem+json``.
"""

from __future__ import annotations

import functools
import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    current_app,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import Babel, LazyString
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import HTTPException

from chopay import db, errors
from chopay.users import User
from chopay.web import formats, sessions
from chopay.web.cookie import SessionCookie, is_page_path

F = TypeVar("F", bound=Callable[..., Any])

LANGUAGES = {"vi": "Tiếng Việt", "en": "English"}
ROLE_LABELS = {
    "admin": _l("administrator"),
    "officer": _l("welfare officer"),
    "approver": _l("approver"),
    "auditor": _l("auditor"),
    "merchant": _l("vendor"),
}
DEFAULT_LANGUAGE = "vi"
PAGE_ROLES_ATTRIBUTE = "_chopay_page_roles"

csrf = CSRFProtect()


@dataclass(frozen=True)
class NavEntry:
    """A link of the navigation, shown to the roles that may open its page."""

    endpoint: str
    label: str | LazyString
    roles: tuple[str, ...]


def is_page_request() -> bool:
    """Tell whether the current request is for a page rather than the API or an operations probe.

    A page's route is one of the page blueprints'; a path no route serves is a page for a browser
    (which asks for HTML first) and a problem document for everyone else.
    """
    if not is_page_path(request.path):
        return False
    if request.blueprint is not None and request.blueprint in current_app.extensions["chopay.web.pages"]:
        return True
    if request.endpoint == "static":
        return True
    best = request.accept_mimetypes.best_match([errors.PROBLEM_JSON, "application/json", "text/html"])
    return best == "text/html"


def current_user() -> User | None:
    """Return the user signed in on this browser, or None (looked up once per request)."""
    if "web_user" not in g:
        user = None
        sid = session.get("sid")
        if isinstance(sid, str):
            with db.get_db().read_session() as s:
                user = sessions.find_user(s, sid)
        g.web_user = user
        if user is not None:
            g.user_id = user.id  # the log line of the request names who made it
    found: User | None = g.web_user
    return found


def requires(*allowed: str) -> Callable[[F], F]:
    """Open the decorated page only to users signed in with one of the ``allowed`` roles."""

    def decorator(func: F) -> F:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            user = current_user()
            if user is None:
                return redirect(url_for("web.login", next=request.full_path.rstrip("?")))
            if user.role not in allowed:
                abort(404)
            return func(*args, **kwargs)

        setattr(wrapper, PAGE_ROLES_ATTRIBUTE, allowed)
        return cast(F, wrapper)

    return decorator


def register_pages(app: Flask, blueprint: Blueprint, nav: Sequence[NavEntry] = ()) -> None:
    """Register a feature's page blueprint and the navigation entries it adds."""
    app.register_blueprint(blueprint)
    app.extensions["chopay.web.pages"].add(blueprint.name)
    app.extensions["chopay.web.nav"].extend(nav)


def navigation(user: User | None) -> list[NavEntry]:
    """Return the navigation entries ``user`` may open, in registration order."""
    if user is None:
        return []
    entries: Iterable[NavEntry] = current_app.extensions["chopay.web.nav"]
    return [e for e in entries if user.role in e.roles]


def csp_nonce() -> str:
    """Return this response's script nonce (the only scripts the page's CSP lets run)."""
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(16)
    nonce: str = g.csp_nonce
    return nonce


def _locale() -> str:
    chosen = session.get("lang")
    return chosen if chosen in LANGUAGES else DEFAULT_LANGUAGE


def _security_headers(response: Response) -> Response:
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    if not is_page_request():
        return response
    response.headers.setdefault("Referrer-Policy", "same-origin")
    if response.mimetype == "text/html":
        response.headers["Content-Security-Policy"] = (
            f"default-src 'self'; script-src 'nonce-{csp_nonce()}'; style-src 'self'; img-src 'self' data:; "
            "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
        )
        response.headers.setdefault("X-Frame-Options", "DENY")
        # A signed-in page is someone's own view: no shared cache may keep it.
        response.headers.setdefault("Cache-Control", "no-store")
    return response


def error_page(status: int, detail: str | None = None) -> Response:
    """Render the layout's error page with ``status``."""
    return Response(render_template("error.html", status=status, detail=detail), status=status)


def _http_error(error: HTTPException) -> Response:
    if not is_page_request():
        return errors.from_http_exception(error)
    status = error.code or 500
    if status >= 500:
        errors.log.error("unhandled error", exc_info=error)
    return error_page(status)


def _chopay_error(error: errors.ChopayError) -> Response:
    if not is_page_request():
        return errors.problem_response(error.to_problem())
    return error_page(error.status, error.detail)


def _unexpected(error: Exception) -> Response:
    if not is_page_request():
        return errors.internal_error(error)
    errors.log.error("unhandled error", exc_info=error)
    return error_page(500)


def _csrf_refused(error: CSRFError) -> Response:
    return error_page(400, "csrf")


def _check_csrf() -> None:
    if request.method == "POST" and request.blueprint in current_app.extensions["chopay.web.pages"]:
        csrf.protect()


def init_app(app: Flask) -> None:
    """Wire the sign-in cookie, CSRF, languages, Jinja helpers, headers and error pages."""
    app.session_interface = SessionCookie()
    app.config.update(
        SESSION_COOKIE_NAME="chopay_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        WTF_CSRF_CHECK_DEFAULT=False,  # checked on pages only: the API authenticates by bearer token
        WTF_CSRF_TIME_LIMIT=None,  # a token lives as long as its session, which ends on its own
        BABEL_DEFAULT_LOCALE=DEFAULT_LANGUAGE,
        BABEL_DEFAULT_TIMEZONE=formats.TIME_ZONE,
    )
    app.extensions["chopay.web.nav"] = []
    app.extensions["chopay.web.pages"] = set()
    csrf.init_app(app)
    Babel(app, locale_selector=_locale)
    app.jinja_env.filters.update(vnd=formats.vnd, vntime=formats.vntime, number=formats.number)
    app.jinja_env.globals.update(csp_nonce=csp_nonce, LANGUAGES=LANGUAGES, ROLE_LABELS=ROLE_LABELS)
    app.before_request(_check_csrf)
    app.after_request(_security_headers)

    @app.context_processor
    def _layout() -> dict[str, Any]:
        user = current_user() if is_page_request() else None
        return {"web_user": user, "nav": navigation(user), "lang": _locale()}

    app.register_error_handler(CSRFError, _csrf_refused)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(errors.ChopayError, _chopay_error)
    app.register_error_handler(Exception, _unexpected)

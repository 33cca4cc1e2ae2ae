"""Bearer-token authentication and per-endpoint role checks.

``@roles("admin", "auditor")`` on a view declares who may call it, and appends the allowed
roles to the endpoint's OpenAPI description. Authentication runs before anything reads the
request body (:func:`init_app`): the token is resolved to a user (401 with ``token_missing``,
``token_malformed``, ``token_invalid`` or ``token_revoked``) and the role checked (403
``role_forbidden``) first, so an anonymous caller learns nothing about how bodies are parsed.
Views without ``@roles`` are public; they authenticate by other means (a signature) or not at
all.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

from flask import Flask, current_app, g, request

from chopay import db
from chopay.errors import Forbidden, Unauthorized
from chopay.users import Role, User, authenticate

F = TypeVar("F", bound=Callable[..., Any])

ANY_ROLE = tuple(r.value for r in Role)

ROLES_ATTRIBUTE = "_chopay_roles"

BEARER_SCHEME = {"type": "http", "scheme": "bearer", "description": "A chopay API token (cp_...)."}


def bearer_token() -> str:
    """Return the token of the current request or raise Unauthorized."""
    header = request.headers.get("Authorization", "")
    if not header:
        raise Unauthorized("Send an API token as 'Authorization: Bearer cp_...'.", code="token_missing")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("The Authorization header must be 'Bearer <token>'.", code="token_malformed")
    return token.strip()


def current_user() -> User:
    """Return the user authenticated for this request."""
    user: User | None = g.get("user")
    if user is None:
        raise Unauthorized("This endpoint needs an API token.", code="token_missing")
    return user


def load_user() -> User:
    """Authenticate the request's token and remember the user for the request.

    The lookup is one read outside any transaction, on a connection given back at once: the
    request's unit of work only begins once its body has been read, so a client that sends its
    body slowly holds neither a database connection nor, on SQLite, the write lock.
    """
    token = bearer_token()
    with db.get_db().read_connection() as conn:
        user = authenticate(conn, token)
    g.user = user
    g.user_id = user.id
    return user


def _check_role(user: User, allowed: tuple[str, ...]) -> None:
    if user.role not in allowed:
        raise Forbidden(
            f"The {user.role} role may not do this; allowed: {', '.join(allowed)}.",
            code="role_forbidden",
        )


def required_roles() -> tuple[str, ...] | None:
    """Return the roles the current request's view allows, or None for a public view."""
    view = current_app.view_functions.get(request.endpoint or "")
    view_class = getattr(view, "view_class", None)
    if view_class is not None:  # a MethodView: the decorators sit on the method
        method = request.method.lower()
        view = getattr(view_class, "get" if method == "head" else method, None)
    allowed: tuple[str, ...] | None = getattr(view, ROLES_ATTRIBUTE, None)
    return allowed


def init_app(app: Flask) -> None:
    """Authenticate and check the role of every request to a view with ``@roles``, first thing."""

    @app.before_request
    def _authenticate() -> None:
        allowed = required_roles()
        if allowed is not None:
            _check_role(load_user(), allowed)


def roles(*allowed: str) -> Callable[[F], F]:
    """Allow only users with one of ``allowed`` roles to call the decorated view."""
    unknown = set(allowed) - set(ANY_ROLE)
    if unknown:
        raise ValueError(f"unknown roles {sorted(unknown)}")

    def decorator(func: F) -> F:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            # Normally done before the request was parsed; this holds if a view is called otherwise.
            user: User | None = g.get("user")
            _check_role(user if user is not None else load_user(), allowed)
            return func(*args, **kwargs)

        doc = (func.__doc__ or "").rstrip()
        wrapper.__doc__ = f"{doc}\n\nRoles: {', '.join(allowed)}." if doc else f"Roles: {', '.join(allowed)}."
        setattr(wrapper, ROLES_ATTRIBUTE, allowed)
        return cast(F, wrapper)

    return decorator

"""Bearer-token authentication and per-endpoint role checks.

``@roles("admin", "auditor")`` on a view declares who may call it. The decorator resolves the
token to a user (401 with ``token_missing``, ``token_malformed``, ``token_invalid`` or
``token_revoked``), checks the role (403 ``role_forbidden``), and appends the allowed roles to
the endpoint's OpenAPI description.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

from flask import g, request

from chopay import db
from chopay.errors import Forbidden, Unauthorized
from chopay.users import Role, User, authenticate

F = TypeVar("F", bound=Callable[..., Any])

ANY_ROLE = tuple(r.value for r in Role)

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
    """Authenticate the request's token and remember the user for the request."""
    s = db.session()
    user = authenticate(s, bearer_token())
    # Detach the user and end the read so services can open their own transaction.
    s.expunge(user)
    s.commit()
    g.user = user
    g.user_id = user.id
    return user


def roles(*allowed: str) -> Callable[[F], F]:
    """Allow only users with one of ``allowed`` roles to call the decorated view."""
    unknown = set(allowed) - set(ANY_ROLE)
    if unknown:
        raise ValueError(f"unknown roles {sorted(unknown)}")

    def decorator(func: F) -> F:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            user = load_user()
            if user.role not in allowed:
                raise Forbidden(
                    f"The {user.role} role may not do this; allowed: {', '.join(allowed)}.",
                    code="role_forbidden",
                )
            return func(*args, **kwargs)

        doc = (func.__doc__ or "").rstrip()
        wrapper.__doc__ = f"{doc}\n\nRoles: {', '.join(allowed)}." if doc else f"Roles: {', '.join(allowed)}."
        return cast(F, wrapper)

    return decorator

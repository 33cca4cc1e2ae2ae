"""Rate limits for public endpoints, per client address (Flask-Limiter).

Public endpoints (the genuine-QR check, receipts) need no account, so anyone can call them
as fast as they like; a limit per client address keeps one client from scraping them or
starving everyone else. Counters live in Redis when ``CHOPAY_REDIS_URL`` is set, so every
web process of a deployment shares them, and in process memory otherwise. If Redis cannot be
reached, the limiter falls back to memory rather than refusing requests.

The client address is the connection's peer. Behind a reverse proxy, set
``CHOPAY_PROXY_HOPS`` to the number of proxies in front of chopay, so that the address comes
from ``X-Forwarded-For`` (and the scheme from ``X-Forwarded-Proto``); never set it when
clients reach chopay directly, or they could choose their own address.

    from chopay import ratelimit

    @blp.route("/v1/qr/verify", methods=["POST"])
    @ratelimit.public
    def verify(): ...

``public`` applies ``CHOPAY_PUBLIC_RATE_LIMIT`` (default ``60/minute``); ``limit("5/second")``
applies a fixed limit. A request over the limit gets 429 problem+json with ``Retry-After``.

Only the views declared this way are limited; every other request skips the limiter at once
(unless the app sets Flask-Limiter's ``RATELIMIT_DEFAULT`` or ``RATELIMIT_APPLICATION``).
Endpoints behind a bearer token are limited by who holds the token, and the bank-notification
intake by its connector's signature: a bank feed posts from a few addresses at a high rate, so
a per-address limit there would refuse genuine payments and protect nothing the signature
check does not.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask, current_app, request
from flask_limiter import Limiter
from flask_limiter.util import get_qualified_name
from limits import parse
from werkzeug.middleware.proxy_fix import ProxyFix

from chopay.config import Settings

F = TypeVar("F", bound=Callable[..., Any])


def client_address() -> str:
    """Return the address a limit counts against: the client's, as far as it can be trusted."""
    return request.remote_addr or "unknown"


_LIMITED: set[str] = set()
"""The qualified names of the views declared with :func:`limit` or :func:`public`."""


class _Limiter(Limiter):
    """Flask-Limiter, whose per-request check returns at once for a view that declares no limit."""

    def _check_request_limit(self, callable_name: str | None = None, in_middleware: bool = True) -> None:
        if in_middleware and _unlimited():
            return
        super()._check_request_limit(callable_name, in_middleware)


limiter = _Limiter(
    client_address,
    headers_enabled=True,
    swallow_errors=True,
    in_memory_fallback_enabled=True,
    strategy="moving-window",
    key_prefix="chopay:ratelimit",
)


def _unlimited() -> bool:
    """Tell whether the request's view declares no limit, so that no limit could apply to it."""
    config = current_app.config
    if config.get("RATELIMIT_DEFAULT") or config.get("RATELIMIT_APPLICATION"):
        return False
    view = current_app.view_functions.get(request.endpoint or "")
    return view is None or get_qualified_name(view) not in _LIMITED


def init_app(app: Flask, settings: Settings) -> None:
    """Attach the limiter to ``app``, storing counters where ``settings`` say."""
    app.config.setdefault("RATELIMIT_STORAGE_URI", settings.redis_url or "memory://")
    if settings.proxy_hops:
        hops = settings.proxy_hops
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]
    limiter.init_app(app)


def _public_limit() -> str:
    settings: Settings = current_app.config["CHOPAY"]
    return settings.public_rate_limit


def limit(value: str) -> Callable[[F], F]:
    """Limit a view to ``value`` requests per client address."""
    parse(value)  # a typo fails at import, not at the first request
    decorate = limiter.limit(value)

    def limited(view: F) -> F:
        _LIMITED.add(get_qualified_name(view))
        return decorate(view)  # type: ignore[return-value]

    return limited


def public(view: F) -> F:
    """Limit a public view to ``CHOPAY_PUBLIC_RATE_LIMIT`` requests per client address."""
    _LIMITED.add(get_qualified_name(view))
    return limiter.limit(_public_limit)(view)  # type: ignore[return-value]

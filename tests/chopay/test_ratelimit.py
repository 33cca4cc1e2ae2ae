"""Public endpoints are limited per client address, in memory or on Redis."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask

from chopay import ratelimit
from chopay.config import from_env
from chopay.errors import PROBLEM_JSON


def _with_public_route(app: Flask) -> Flask:
    def ping() -> dict[str, bool]:
        return {"ok": True}

    ping.__name__ = f"ping_{id(app)}"
    app.add_url_rule("/v1/test-public", view_func=ratelimit.public(ping))
    return app


def _forwarded(i: int) -> dict[str, str]:
    return {"X-Forwarded-For": f"198.51.100.{i}"}


def test_a_client_over_the_limit_gets_a_problem_with_retry_after(make_app: Callable[..., Flask]) -> None:
    client = _with_public_route(make_app(public_rate_limit="3/minute")).test_client()

    answers = [client.get("/v1/test-public") for _ in range(4)]

    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    refused = answers[-1]
    assert refused.mimetype == PROBLEM_JSON
    assert refused.json["code"] == "too_many_requests"
    assert int(refused.headers["Retry-After"]) > 0
    assert answers[0].headers["X-RateLimit-Limit"] == "3"


def test_limits_count_per_client_address(make_app: Callable[..., Flask]) -> None:
    client = _with_public_route(make_app(public_rate_limit="2/minute")).test_client()
    first = {"REMOTE_ADDR": "192.0.2.1"}
    second = {"REMOTE_ADDR": "192.0.2.2"}

    answers = [client.get("/v1/test-public", environ_base=first).status_code for _ in range(3)]
    assert answers == [200, 200, 429]
    assert client.get("/v1/test-public", environ_base=second).status_code == 200


def test_forwarded_addresses_count_only_behind_a_declared_proxy(make_app: Callable[..., Flask]) -> None:
    direct = _with_public_route(make_app(public_rate_limit="1/minute")).test_client()
    spoofed = [direct.get("/v1/test-public", headers=_forwarded(i)).status_code for i in range(2)]
    assert spoofed == [200, 429], "a client must not choose its own address by sending X-Forwarded-For"

    proxied = _with_public_route(make_app(public_rate_limit="1/minute", proxy_hops=1)).test_client()
    behind = [proxied.get("/v1/test-public", headers=_forwarded(i)).status_code for i in range(2)]
    assert behind == [200, 200]


def test_views_without_the_decorator_are_not_limited(make_app: Callable[..., Flask]) -> None:
    client = make_app(public_rate_limit="1/minute").test_client()
    assert [client.get("/healthz").status_code for _ in range(3)] == [200, 200, 200]


def test_the_limiter_skips_only_views_that_declare_no_limit(make_app: Callable[..., Flask]) -> None:
    app = _with_public_route(make_app(public_rate_limit="1/minute"))
    for path, method, skipped in [
        ("/v1/bank-notifications", "POST", True),
        ("/healthz", "GET", True),
        ("/v1/qr/verify", "POST", False),
        ("/v1/test-public", "GET", False),
    ]:
        with app.test_request_context(path, method=method):
            assert ratelimit._unlimited() is skipped, path


def test_a_default_limit_of_the_app_still_applies_to_every_view(make_app: Callable[..., Flask]) -> None:
    client = make_app(extra={"RATELIMIT_DEFAULT": "2/minute"}).test_client()
    assert [client.get("/healthz").status_code for _ in range(3)] == [200, 200, 429]


def test_counters_live_on_redis_when_it_is_configured(make_app: Callable[..., Flask], redis_url: str) -> None:
    from redis import Redis

    client = _with_public_route(make_app(public_rate_limit="2/minute", redis_url=redis_url)).test_client()
    assert [client.get("/v1/test-public").status_code for _ in range(3)] == [200, 200, 429]
    keys = Redis.from_url(redis_url).keys("*chopay:ratelimit*")
    assert keys, "the limiter should keep its counters on Redis"


@pytest.mark.parametrize("value", ["lots", "60 per fortnight", "-1/minute", ""])
def test_a_bad_limit_setting_is_refused_with_its_name(value: str) -> None:
    if value == "":
        assert from_env({"CHOPAY_PUBLIC_RATE_LIMIT": value}).public_rate_limit == "60/minute"
        return
    with pytest.raises(ValueError, match="CHOPAY_PUBLIC_RATE_LIMIT"):
        from_env({"CHOPAY_PUBLIC_RATE_LIMIT": value})


def test_negative_proxy_hops_are_refused() -> None:
    with pytest.raises(ValueError, match="CHOPAY_PROXY_HOPS"):
        from_env({"CHOPAY_PROXY_HOPS": "-1"})

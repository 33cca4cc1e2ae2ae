"""A served chopay over real HTTP: a sticker decoded from its PNG, checked, and the check rate-limited.

With ``CHOPAY_TEST_REDIS_URL`` the service keeps its rate-limit counters on that Redis, as a
deployment of several web processes does; without it, in memory.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator

import pytest
import zxingcpp
from PIL import Image

from tests.merchants.conftest import vendor

from .serving import Service, admin_headers, serving

LIMIT = 5
REDIS_URL = os.environ.get("CHOPAY_TEST_REDIS_URL")


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    extra = {"CHOPAY_PUBLIC_RATE_LIMIT": f"{LIMIT}/minute"}
    if REDIS_URL:
        from redis import Redis

        Redis.from_url(REDIS_URL).flushdb()
        extra["CHOPAY_REDIS_URL"] = REDIS_URL
    with serving(tmp_path_factory.mktemp("e2e-merchants") / "var", **extra) as running:
        yield running


def test_sticker_is_served_decoded_and_checked_with_a_limit(service: Service) -> None:
    headers = {**admin_headers(service), "Content-Type": "application/json"}
    created = service.request("POST", "/v1/merchants", json.dumps(vendor(1)).encode(), headers)
    assert created.status == 201, created.body
    merchant = created.json()
    assert isinstance(merchant, dict)

    png = service.request(
        "GET", f"/v1/merchants/{merchant['id']}/qr?format=png", headers=admin_headers(service)
    )
    assert png.status == 200
    assert png.headers["content-type"] == "image/png"
    [found] = zxingcpp.read_barcodes(Image.open(io.BytesIO(png.body)))
    again = service.request(
        "GET",
        f"/v1/merchants/{merchant['id']}/qr?format=png",
        headers={**admin_headers(service), "If-None-Match": png.headers["etag"]},
    )
    assert again.status == 304

    body = json.dumps({"payload": found.text}).encode()
    answers = [
        service.request("POST", "/v1/qr/verify", body, {"Content-Type": "application/json"})
        for _ in range(LIMIT + 1)
    ]
    assert [a.status for a in answers] == [200] * LIMIT + [429]
    verdict = answers[0].json()
    assert isinstance(verdict, dict)
    assert verdict["genuine"] is True
    assert verdict["merchant"]["id"] == merchant["id"]
    refused = answers[-1]
    assert refused.headers["content-type"] == "application/problem+json"
    assert int(refused.headers["retry-after"]) > 0
    for private in (merchant["account_holder"], merchant["account_number"], "phone"):
        assert private.encode() not in answers[0].body
    if REDIS_URL:
        from redis import Redis

        assert Redis.from_url(REDIS_URL).keys("*chopay:ratelimit*"), "counters should be on Redis"

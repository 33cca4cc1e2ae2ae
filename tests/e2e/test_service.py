"""The whole service: ``chopay init``, then ``chopay serve`` (gunicorn) over a real socket.

These tests start the installed ``chopay`` command in a subprocess with its own data
directory, exactly as an operator would, and talk HTTP to it.
"""

from __future__ import annotations

import http.client
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from openapi_spec_validator import validate
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from .serving import MAX_BODY, Response, Service, admin_headers, serving, stop


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    with serving(tmp_path_factory.mktemp("e2e") / "var") as running:
        yield running


def test_readyz_answers_200(service: Service):
    resp = service.request("GET", "/readyz")
    assert resp.status == 200
    assert resp.json() == {"status": "ready", "checks": {"database": "ok"}}
    assert service.request("GET", "/healthz").status == 200


def test_the_admin_token_works_on_me(service: Service):
    resp = service.request("GET", "/v1/users/me", headers=admin_headers(service))
    assert resp.status == 200
    me = resp.json()
    assert isinstance(me, dict)
    assert me["role"] == "admin"
    assert me["active"] is True


def test_users_can_be_created_and_used(service: Service):
    body = json.dumps({"name": "Test E2E Auditor", "role": "auditor"}).encode()
    headers = {**admin_headers(service), "Content-Type": "application/json", "Idempotency-Key": "e2e-1"}
    created = service.request("POST", "/v1/users", body, headers)
    assert created.status == 201
    replay = service.request("POST", "/v1/users", body, headers)
    assert replay.headers["idempotent-replayed"] == "true"
    issued = created.json()
    assert isinstance(issued, dict)
    assert replay.json() == {**issued, "token": None}  # the token is shown once, never stored
    me = service.request("GET", "/v1/users/me", headers={"Authorization": f"Bearer {issued['token']}"})
    assert me.status == 200
    forbidden = service.request("GET", "/v1/users", headers={"Authorization": f"Bearer {issued['token']}"})
    assert forbidden.status == 403
    assert forbidden.headers["content-type"] == "application/problem+json"


def test_docs_load_without_any_network(service: Service):
    resp = service.request("GET", "/docs")
    assert resp.status == 200
    html = resp.body.decode()
    assert not re.search(r"(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", html)
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert len(assets) >= 3
    for asset in assets:
        assert asset.startswith("/"), asset
        served = service.request("GET", asset)
        assert served.status == 200, asset
        assert len(served.body) > 1000, asset
    config_url = re.search(r'url: "([^"]+)"', html)
    assert config_url is not None
    assert service.request("GET", config_url.group(1)).status == 200


def test_openapi_json_validates(service: Service):
    resp = service.request("GET", "/openapi.json")
    assert resp.status == 200
    spec = resp.json()
    assert isinstance(spec, dict)
    validate(spec)
    assert "/v1/users/me" in spec["paths"]


def test_request_ids_are_echoed_and_errors_are_problems(service: Service):
    resp = service.request("GET", "/v1/nothing-here", headers={"X-Request-ID": "e2e-req-1"})
    assert resp.status == 404
    assert resp.headers["x-request-id"] == "e2e-req-1"
    problem = resp.json()
    assert isinstance(problem, dict)
    assert problem["request_id"] == "e2e-req-1"
    assert problem["code"] == "not_found"


def _chunked_post(service: Service, path: str, body: bytes, headers: dict[str, str]) -> Response:
    conn = http.client.HTTPConnection("127.0.0.1", service.port, timeout=30)
    try:
        conn.putrequest("POST", path)
        for name, value in {**headers, "Transfer-Encoding": "chunked"}.items():
            conn.putheader(name, value)
        conn.endheaders()
        for start in range(0, len(body), 1000):
            piece = body[start : start + 1000]
            conn.send(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
        conn.send(b"0\r\n\r\n")
        resp = conn.getresponse()
        return Response(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
    finally:
        conn.close()


def test_oversized_bodies_are_413_with_or_without_a_length(service: Service):
    headers = {**admin_headers(service), "Content-Type": "application/json"}
    valid = json.dumps({"name": "Test Too Big", "role": "auditor"}).encode()
    big = valid + b" " * (MAX_BODY - len(valid)) + b"and then some more"
    assert service.request("POST", "/v1/users", big, headers).status == 413
    chunked = _chunked_post(service, "/v1/users", big, headers)
    assert chunked.status == 413, chunked.body
    assert chunked.headers["content-type"] == "application/problem+json"
    listed = service.request("GET", "/v1/users?limit=500", headers=admin_headers(service)).json()
    assert isinstance(listed, dict)
    assert "Test Too Big" not in [u["name"] for u in listed["items"]]
    small = _chunked_post(
        service, "/v1/users", json.dumps({"name": "Test Chunked", "role": "auditor"}).encode(), headers
    )
    assert small.status == 201


def test_each_request_is_one_json_log_line_without_the_token(service: Service):
    token = admin_headers(service)["Authorization"].removeprefix("Bearer ")
    service.request("GET", "/v1/users/me", headers={**admin_headers(service), "X-Request-ID": "e2e-log-1"})
    deadline = time.monotonic() + 10
    line = None
    while line is None and time.monotonic() < deadline:
        lines = [ln for ln in service.output().splitlines() if '"e2e-log-1"' in ln]
        line = lines[0] if lines else None
        if line is None:
            time.sleep(0.05)
    assert line is not None, service.output()
    entry = json.loads(line)
    assert entry["route"] == "/v1/users/me"
    assert entry["status"] == 200
    assert entry["method"] == "GET"
    assert entry["duration_ms"] >= 0
    assert token not in service.output()


def test_metrics_are_prometheus_text(service: Service):
    service.request("GET", "/healthz")
    resp = service.request("GET", "/metrics")
    assert resp.status == 200
    assert resp.headers["content-type"].startswith("text/plain")
    text = resp.body.decode()
    assert re.search(r'chopay_http_requests_total\{endpoint="healthz",method="GET",status="200"\} \d', text)
    assert "chopay_http_request_duration_seconds_bucket" in text


def _healthz_count(text: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "chopay_http_requests_total" and sample.labels.get("endpoint") == "healthz":
                return sample.value
    return 0.0


def test_metrics_add_up_every_worker_whichever_answers_the_scrape(tmp_path: Path):
    with serving(tmp_path / "var", CHOPAY_WEB_WORKERS="2") as service:
        shared = service.data_dir / "metrics" / "serve"
        answered: dict[str, float] = {}
        sent = 0
        # Each request on a new connection, until both workers have answered some of them.
        while sent < 2000 and sum(1 for n in answered.values() if n) < 2:
            assert service.request("GET", "/healthz").status == 200
            sent += 1
            if sent % 20 == 0:
                answered = {
                    f.name: sum(
                        s.value
                        for m in MultiProcessCollector.merge([str(f)], accumulate=False)
                        for s in m.samples
                        if s.name == "chopay_http_requests_total" and s.labels.get("endpoint") == "healthz"
                    )
                    for f in shared.glob("counter_*.db")
                }
        assert sum(1 for n in answered.values() if n) == 2, f"one worker answered all {sent}: {answered}"
        assert sum(answered.values()) == sent
        for _ in range(8):  # scrapes land on either worker: each one shows every worker's count
            resp = service.request("GET", "/metrics")
            assert resp.status == 200
            assert _healthz_count(resp.body.decode()) == sent


def test_sigterm_shuts_down_gracefully(tmp_path: Path):
    with serving(tmp_path / "var") as service:
        assert service.request("GET", "/readyz").status == 200
        code = stop(service.proc)  # SIGTERM, then wait up to STOP_WITHIN seconds
        assert code == 0, service.output()
        output = service.output()
        assert "Shutting down" in output or "Handling signal: term" in output
        with pytest.raises(ConnectionRefusedError):
            service.request("GET", "/healthz")

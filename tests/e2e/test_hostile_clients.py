"""Slow, stalled and malformed clients against the real ``chopay serve`` (gunicorn) process."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .serving import CHOPAY, Service, admin_headers, environment, free_port, init, serving, stop

STALLED = 32
READ_TIMEOUT = 3


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    # The embedded defaults: one worker, CHOPAY_WEB_THREADS unset (64 threads).
    data_dir = tmp_path_factory.mktemp("hostile") / "var"
    with serving(data_dir, CHOPAY_WEB_THREADS="64", CHOPAY_READ_TIMEOUT=str(READ_TIMEOUT)) as running:
        yield running


def _open(service: Service, head: bytes) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", service.port), timeout=30)
    sock.sendall(head)
    return sock


def _stalled_body(service: Service, token: str | None) -> socket.socket:
    auth = f"Authorization: Bearer {token}\r\n".encode() if token else b""
    return _open(
        service,
        b"POST /v1/users HTTP/1.1\r\nHost: chopay\r\nContent-Type: application/json\r\n"
        + auth
        + b"Content-Length: 100\r\n\r\n[1,2,",
    )


def _healthz_time(service: Service) -> float:
    started = time.monotonic()
    assert service.request("GET", "/healthz").status == 200
    return time.monotonic() - started


def _status_of(sock: socket.socket) -> int:
    sock.settimeout(READ_TIMEOUT * 4)
    data = sock.recv(4096)
    return int(data.split(b" ", 2)[1]) if data else 0


def test_stalled_bodies_do_not_freeze_the_service(service: Service):
    token = admin_headers(service)["Authorization"].removeprefix("Bearer ")
    sockets = [_stalled_body(service, token) for _ in range(STALLED)]
    sockets += [_open(service, b"GET /v1/users/me HTTP/1.1\r\nHost: chopay\r\nX-Slow: ") for _ in range(8)]
    try:
        time.sleep(0.5)  # let every connection reach a worker thread
        times = [_healthz_time(service) for _ in range(5)]
        assert max(times) < 2.0, times
        # Once the read deadline passes, each stalled body ends with a 400 and frees its thread.
        assert [_status_of(s) for s in sockets[:4]] == [400] * 4
    finally:
        for s in sockets:
            s.close()


def test_an_anonymous_stalled_body_is_answered_at_once_without_reading_it(service: Service):
    sock = _stalled_body(service, None)
    try:
        sock.settimeout(2)
        assert b" 401 " in sock.recv(4096)
    finally:
        sock.close()


@pytest.mark.parametrize("authenticated", [False, True])
def test_a_malformed_chunk_size_is_a_4xx(service: Service, authenticated: bool):
    auth = admin_headers(service)["Authorization"].encode() if authenticated else b""
    head = b"POST /v1/users HTTP/1.1\r\nHost: chopay\r\nContent-Type: application/json\r\n"
    if auth:
        head += b"Authorization: " + auth.removeprefix(b"Authorization: ") + b"\r\n"
    sock = _open(service, head + b"Transfer-Encoding: chunked\r\n\r\nZZZ\r\n{}\r\n0\r\n\r\n")
    try:
        status = _status_of(sock)
    finally:
        sock.close()
    assert status == (400 if authenticated else 401)
    assert "InvalidChunkSize" not in service.output()
    assert service.request("GET", "/healthz").status == 200


def test_the_start_up_banner_hides_the_redis_password(tmp_path: Path):
    data_dir = tmp_path / "var"
    env = environment(data_dir, CHOPAY_REDIS_URL="redis://:s3cret-pass@127.0.0.1:1/0")
    init(data_dir, env)
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(CHOPAY), "serve", "--bind", f"127.0.0.1:{free_port()}"],
            env=env,
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        while "jobs:" not in log.read_text(errors="replace") and time.monotonic() < deadline:
            assert proc.poll() is None, log.read_text()
            time.sleep(0.1)
        text = log.read_text(errors="replace")
        assert "jobs:          Redis (redis://:***@127.0.0.1:1/0)" in text
        assert "s3cret-pass" not in text
    finally:
        stop(proc)


def test_a_token_in_a_path_stays_out_of_the_access_log(service: Service):
    token = admin_headers(service)["Authorization"].removeprefix("Bearer ")
    service.request("GET", f"/v1/{token}")
    service.request("POST", f"/v1/users/{token}/revoke", headers=admin_headers(service))
    time.sleep(0.2)
    lines = [json.loads(line) for line in service.output().splitlines() if line.startswith("{")]
    assert any(line.get("route") == "unmatched" for line in lines)
    assert token[3:] not in service.output()

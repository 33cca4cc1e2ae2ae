"""Start the installed ``chopay`` command as an operator would, and talk HTTP to it."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

CHOPAY = Path(sys.executable).parent / "chopay"
READY_WITHIN = 60.0
STOP_WITHIN = 30.0
MAX_BODY = 4096


def free_port() -> int:
    """Return a TCP port that is free on 127.0.0.1 now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def environment(data_dir: Path, **extra: str) -> dict[str, str]:
    """Return the environment of a chopay process on ``data_dir``: no CHOPAY_* setting leaks in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHOPAY_")}
    env.update(
        CHOPAY_DATA_DIR=str(data_dir),
        CHOPAY_LOG_LEVEL="INFO",
        CHOPAY_MAX_BODY_BYTES=str(MAX_BODY),
        CHOPAY_WEB_THREADS="4",
    )
    env.update(extra)
    return env


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> object:
        return json.loads(self.body)


@dataclass
class Service:
    proc: subprocess.Popen[bytes]
    port: int
    data_dir: Path
    log: Path

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> Response:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return Response(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
        finally:
            conn.close()

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def init(data_dir: Path, env: dict[str, str]) -> str:
    """Run ``chopay init`` on ``data_dir``; return what it printed."""
    done = subprocess.run(
        [str(CHOPAY), "init"], env=env, cwd=data_dir.parent, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def wait_ready(service: Service) -> None:
    """Wait until ``/readyz`` answers 200; fail with the server's output otherwise."""
    deadline = time.monotonic() + READY_WITHIN
    last = "no answer"
    while time.monotonic() < deadline:
        if service.proc.poll() is not None:
            pytest.fail(f"chopay serve exited with {service.proc.returncode}:\n{service.output()}")
        try:
            resp = service.request("GET", "/readyz")
            if resp.status == 200:
                return
            last = f"{resp.status} {resp.body[:200]!r}"
        except OSError as exc:
            last = repr(exc)
        time.sleep(0.1)
    pytest.fail(f"/readyz did not answer 200 within {READY_WITHIN}s (last: {last}):\n{service.output()}")


def stop(proc: subprocess.Popen[bytes]) -> int | None:
    """SIGTERM the server and wait; SIGKILL its process group if it does not stop in time."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=STOP_WITHIN)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        return None


@contextmanager
def serving(data_dir: Path, **settings: str) -> Iterator[Service]:
    """Initialise ``data_dir``, serve it on a free port until ready; always stop it afterwards."""
    env = environment(data_dir, **settings)
    init(data_dir, env)
    port = free_port()
    log = data_dir.parent / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(CHOPAY), "serve", "--bind", f"127.0.0.1:{port}"],
            env=env,
            cwd=data_dir.parent,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so a stuck server can be killed whole
        )
    service = Service(proc, port, data_dir, log)
    try:
        wait_ready(service)
        yield service
    finally:
        stop(proc)


def admin_headers(service: Service) -> dict[str, str]:
    """Return the Authorization header of the admin ``chopay init`` created."""
    token = (service.data_dir / "admin-token").read_text().strip()
    return {"Authorization": f"Bearer {token}"}

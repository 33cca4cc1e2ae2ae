"""Run ``chopay fakebank serve`` as a child process, for tests and benchmarks.

    with Simulator.start(tmp_path, "--settle-ms", "200") as bank:
        rail = bank.rail()
        ...
        assert bank.admin().get("/admin/transfers").json()["references_paid_more_than_once"] == []

The simulator binds a free port (``--port 0``) and the URL is read from its banner; its
output goes to a log file beside its database, never to a pipe nobody reads (a full pipe
would block the server). It is stopped with SIGTERM to its own pid, then reaped.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from payments.rails.fakebank import config as cfg
from payments.rails.payos import PayosRail

BANNER_END = "  notifications:"


@dataclass
class Simulator:
    """A running simulator process."""

    url: str
    db: Path
    log: Path
    process: subprocess.Popen[bytes]
    banner: str

    @classmethod
    def start(
        cls, directory: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 60.0
    ) -> Simulator:
        """Start a simulator with its database in ``directory``; wait for its banner.

        ``env`` adds to (never replaces) the environment the simulator inherits.
        """
        stamp = time.monotonic_ns()
        db = directory / f"fakebank-{stamp}.db"
        log = directory / f"fakebank-{stamp}.log"
        chopay = Path(sys.executable).with_name("chopay")
        with log.open("wb") as sink:
            process = subprocess.Popen(
                [str(chopay), "fakebank", "serve", "--port", "0", "--db", str(db), *args],
                stdout=sink,
                stderr=subprocess.STDOUT,
                env={**os.environ, **(env or {})},
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and process.poll() is None:
            text = log.read_text(errors="replace")
            if BANNER_END in text:
                url = text.split("serving on ", 1)[1].split()[0]
                return cls(url, db, log, process, text)
            time.sleep(0.05)
        process.kill()
        process.wait(timeout=10)
        raise RuntimeError("the simulator did not start:\n" + log.read_text(errors="replace"))

    def stop(self) -> None:
        """Stop the simulator gracefully, killing it if it does not exit within 30 s."""
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def __enter__(self) -> Simulator:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def admin(self, timeout: float = 30.0) -> httpx.Client:
        """Return a client for the admin endpoints (close it, or use it as a context manager)."""
        return httpx.Client(base_url=self.url, timeout=timeout)

    def rail(self, **kwargs: Any) -> PayosRail:
        """Return chopay's payOS rail pointed at this simulator with its demo credentials."""
        options: dict[str, Any] = {
            "base_url": self.url,
            "client_id": cfg.DEMO_CLIENT_ID,
            "api_key": cfg.DEMO_API_KEY,
            "checksum_key": cfg.DEMO_CHECKSUM_KEY,
        }
        return PayosRail(**(options | kwargs))

"""Serve the simulator with gunicorn (gthread workers), as ``chopay serve`` serves chopay.

The database is prepared once in the master (schema, house accounts, seeded accounts,
connectors); each worker then opens its own engine and starts its notification deliverer.
With ``--port 0`` the kernel picks a free port; the banner names the one bound.
"""

from __future__ import annotations

import sys
from typing import Any

from gunicorn.app.base import BaseApplication

from payments.rails.fakebank.config import FakebankConfig


def banner(config: FakebankConfig, url: str, connectors: list[str]) -> str:
    """Return what the simulator prints when it is ready."""
    seed = "none" if config.seed is None else str(config.seed)
    return "\n".join(
        [
            f"fakebank is serving on {url}",
            f"  database:      {config.db}",
            f"  client id:     {config.client_id}",
            f"  api key:       {config.api_key}",
            f"  checksum key:  {config.checksum_key}",
            f"  faults:        error-rate {config.error_rate} drop-rate {config.drop_rate} "
            f"latency {config.latency_ms} ms settle {config.settle_ms} ms seed {seed}",
            f"  notifications: {config.notify_url} (connectors: {', '.join(connectors) or 'none'})",
        ]
    )


class FakebankServer(BaseApplication):  # type: ignore[misc]
    """A gunicorn application serving :func:`payments.rails.fakebank.app.create_app`."""

    def __init__(self, config: FakebankConfig, connectors: list[str]) -> None:
        self.fakebank = config
        self.connector_names = connectors
        super().__init__()

    def load_config(self) -> None:
        """Apply the simulator's server settings."""
        config = self.fakebank
        settings: dict[str, Any] = {
            "bind": f"{config.host}:{config.port}",
            "workers": config.workers,
            "threads": config.threads,
            "worker_class": "gthread",
            "accesslog": None,
            "errorlog": "-",
            "loglevel": "warning",
            "graceful_timeout": 10,
            "timeout": 120,
            "keepalive": 30,
            "backlog": 256,
            "post_worker_init": _post_worker_init,
            "worker_exit": _worker_exit,
            "when_ready": self._when_ready,
        }
        for key, value in settings.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        """Build the app in the worker (after fork, so each has its own connections)."""
        from payments.rails.fakebank.app import create_app

        return create_app(self.fakebank)

    def _when_ready(self, server: Any) -> None:
        host, port = server.LISTENERS[0].sock.getsockname()[:2]
        print(banner(self.fakebank, f"http://{host}:{port}", self.connector_names), flush=True)
        sys.stdout.flush()


def _post_worker_init(worker: Any) -> None:
    """Start this worker's notification deliverer."""
    worker.wsgi.extensions["fakebank"].deliverer.start()


def _worker_exit(server: Any, worker: Any) -> None:
    """Stop the deliverer so the worker exits promptly."""
    app = getattr(worker, "wsgi", None)
    if app is not None and "fakebank" in getattr(app, "extensions", {}):
        app.extensions["fakebank"].deliverer.stop()

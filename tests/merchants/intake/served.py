"""An app that really commits, served over HTTP on a thread, for concurrency and streaming tests."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from flask import Flask
from werkzeug.serving import make_server

from chopay import create_app
from chopay.cli.keys import ensure_keys
from chopay.db import get_db
from chopay.models import metadata
from tests.conftest import make_settings
from tests.merchants.intake.conftest import CONNECTORS


@contextmanager
def committing_app(database_url: str, tmp_path: Path, **extra: object) -> Iterator[Flask]:
    """Create an app on ``database_url`` that commits for real; empty every table afterwards."""
    settings = make_settings(database_url, tmp_path, bank_connectors=CONNECTORS, **extra)
    ensure_keys(settings)
    app = create_app(settings)
    try:
        yield app
    finally:
        with get_db(app).engine.begin() as conn:
            for table in reversed(metadata.sorted_tables):
                conn.execute(table.delete())
        get_db(app).engine.dispose()


@contextmanager
def serving(app: Flask) -> Iterator[str]:
    """Serve ``app`` with one thread per request on a free port; yield its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)

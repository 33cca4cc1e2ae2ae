"""``/healthz`` (liveness) and ``/readyz`` (the database, and Redis when configured, answer)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from chopay import create_app
from chopay.config import from_env
from chopay.db import get_db
from tests.chopay.helpers import assert_problem


def _closed_port() -> int:
    """Return a local TCP port with nothing listening on it."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _app(tmp_path: Path, **overrides: object) -> Iterator[Flask]:
    settings = from_env({}, data_dir=tmp_path, log_level="WARNING", **overrides)
    application = create_app(settings)
    application.config["TESTING"] = True
    yield application
    get_db(application).engine.dispose()


def test_healthz_is_200(client: FlaskClient):
    resp = client.get("/healthz")
    assert resp.status_code == 200
    assert resp.get_json() == {"status": "ok"}
    assert resp.headers["X-Request-ID"]


def test_readyz_is_200_when_the_database_answers(client: FlaskClient):
    resp = client.get("/readyz")
    assert resp.status_code == 200
    assert resp.get_json() == {"status": "ready", "checks": {"database": "ok"}}


@pytest.fixture(
    params=[
        pytest.param("sqlite:////nonexistent-dir/chopay/x.db", id="sqlite-missing-dir"),
        pytest.param("closed-port", id="postgresql-closed-port"),
    ]
)
def unreachable_db_app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Flask]:
    url = request.param
    if url == "closed-port":
        url = f"postgresql+psycopg://chopay@127.0.0.1:{_closed_port()}/chopay?connect_timeout=3"
    yield from _app(tmp_path, database_url=url)


def test_readyz_is_503_when_the_database_is_unreachable(unreachable_db_app: Flask):
    client = unreachable_db_app.test_client()
    body = assert_problem(client.get("/readyz"), 503, "not_ready")
    assert "database" in body["detail"]
    assert body["checks"]["database"].startswith("error: ")
    assert "OperationalError" in body["checks"]["database"]
    # Liveness is unaffected: the process itself is fine.
    assert client.get("/healthz").status_code == 200


def test_readyz_does_not_leak_the_database_url(unreachable_db_app: Flask):
    text = unreachable_db_app.test_client().get("/readyz").get_data(as_text=True)
    assert "nonexistent-dir" not in text
    assert "127.0.0.1" not in text


def test_readyz_is_503_when_redis_is_unreachable(tmp_path: Path):
    for application in _app(
        tmp_path,
        database_url=f"sqlite:///{tmp_path / 'ready.db'}",
        redis_url=f"redis://127.0.0.1:{_closed_port()}/0",
        inline_jobs=False,
    ):
        client = application.test_client()
        body = assert_problem(client.get("/readyz"), 503, "not_ready")
        assert body["checks"]["database"] == "ok"
        assert body["checks"]["redis"].startswith("error: ")
        assert "redis" in body["detail"]
        assert "database" not in body["detail"]
        # A scrape must still work while Redis is down.
        assert client.get("/metrics").status_code == 200


def test_readyz_checks_redis_when_configured(tmp_path: Path, redis_url: str):
    for application in _app(
        tmp_path, database_url=f"sqlite:///{tmp_path / 'ready.db'}", redis_url=redis_url, inline_jobs=False
    ):
        resp = application.test_client().get("/readyz")
        assert resp.status_code == 200
        assert resp.get_json()["checks"] == {"database": "ok", "redis": "ok"}

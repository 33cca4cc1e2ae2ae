"""Fixtures for the bank rail: an in-process simulator, the SDK bound to it, a live server.

``bank`` is the simulator's WSGI app on a fresh SQLite file; ``sdk`` is the unmodified
payOS SDK talking to it through httpx's WSGI transport (no sockets). ``live_bank`` starts
``chopay fakebank serve --port 0`` as a real gunicorn process
(:class:`payments.rails.fakebank.process.Simulator`), for tests that need real HTTP
(dropped connections, the CLI).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import payos
import pytest
from flask import Flask

from payments.rails.fakebank import accounts
from payments.rails.fakebank import config as cfg
from payments.rails.fakebank.app import create_app
from payments.rails.fakebank.models import open_db
from payments.rails.fakebank.process import Simulator
from payments.rails.payos import PayosRail


def make_bank(tmp_path: Path, **options: Any) -> Flask:
    """Create an in-process simulator app on a new database."""
    config = cfg.FakebankConfig(db=tmp_path / "fakebank.db", **options)
    engine = open_db(config.db)
    with engine.begin() as conn:
        accounts.ensure_house_accounts(conn, config.source_balance)
    app = create_app(config, engine)
    app.config["TESTING"] = False  # errors must become envelopes, as in production
    return app


@pytest.fixture
def bank_options() -> dict[str, Any]:
    """Override to configure the in-process simulator."""
    return {}


@pytest.fixture
def bank(tmp_path: Path, bank_options: dict[str, Any]) -> Iterator[Flask]:
    app = make_bank(tmp_path, **bank_options)
    yield app
    app.extensions["fakebank"].engine.dispose()


@pytest.fixture
def wsgi_client(bank: Flask) -> Iterator[httpx.Client]:
    """Return an httpx client whose requests go straight into the simulator app."""
    with httpx.Client(transport=httpx.WSGITransport(app=bank), base_url="http://fakebank") as client:
        yield client


@pytest.fixture
def sdk(wsgi_client: httpx.Client) -> payos.PayOS:
    """Return the unmodified payOS SDK bound to the in-process simulator."""
    return payos.PayOS(
        cfg.DEMO_CLIENT_ID,
        cfg.DEMO_API_KEY,
        cfg.DEMO_CHECKSUM_KEY,
        base_url="http://fakebank/",
        max_retries=0,
        http_client=wsgi_client,
    )


@pytest.fixture
def rail(wsgi_client: httpx.Client) -> PayosRail:
    """Return chopay's payOS rail bound to the in-process simulator."""
    return PayosRail(
        base_url="http://fakebank",
        client_id=cfg.DEMO_CLIENT_ID,
        api_key=cfg.DEMO_API_KEY,
        checksum_key=cfg.DEMO_CHECKSUM_KEY,
        http_client=wsgi_client,
    )


@pytest.fixture
def live_bank(tmp_path: Path) -> Iterator[Callable[..., Simulator]]:
    """Return a factory of live simulators, all stopped after the test."""
    started: list[Simulator] = []

    def factory(*args: str, env: dict[str, str] | None = None) -> Simulator:
        live = Simulator.start(tmp_path, *args, env=env)
        started.append(live)
        return live

    yield factory
    for live in started:
        live.stop()


def wait_for(condition: Callable[[], Any], timeout: float = 20.0, interval: float = 0.02) -> Any:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")


def replace_config(app: Flask, **changes: Any) -> None:
    """Change the running in-process simulator's configuration."""
    state = app.extensions["fakebank"]
    state.config = dataclasses.replace(state.config, **changes)

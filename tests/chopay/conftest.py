"""Fixtures of the foundation tests, on top of the shared ones in tests/conftest.py."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy.engine import Connection

from chopay import create_app
from chopay.config import from_env
from chopay.db import get_db
from tests.chopay.helpers import LogCapture, capture_logs


@pytest.fixture
def auth_headers(make_token: Callable[..., str]) -> Callable[..., dict[str, str]]:
    """Return a factory of Authorization headers for a new user with a role."""

    def factory(role: str = "admin", merchant_id: int | None = None) -> dict[str, str]:
        if role == "merchant" and merchant_id is None:
            merchant_id = 4242
        return {"Authorization": f"Bearer {make_token(role, merchant_id=merchant_id)}"}

    return factory


@pytest.fixture
def logs(app: Flask) -> Iterator[LogCapture]:
    """Capture chopay's JSON log lines (every level) while the test runs against ``app``."""
    with capture_logs() as handler:
        yield handler


@pytest.fixture
def make_app(database_url: str, tmp_path: Path, connection: Connection) -> Iterator[Callable[..., Flask]]:
    """Return a factory of apps with other settings whose sessions join the test transaction.

    The defaults are those of the ``app`` fixture; keyword arguments override any of them.
    """

    made: list[Flask] = []

    def factory(**overrides: object) -> Flask:
        values: dict[str, object] = {
            "database_url": database_url,
            "data_dir": tmp_path,
            "keys_dir": tmp_path / "keys",
            "inline_jobs": True,
            "log_level": "WARNING",
        }
        application = create_app(from_env({}, **(values | overrides)))
        application.config["TESTING"] = True
        get_db(application).bind_to(connection)
        made.append(application)
        return application

    yield factory
    for application in made:
        get_db(application).engine.dispose()

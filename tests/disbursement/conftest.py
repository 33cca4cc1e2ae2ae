"""Fixtures of the disbursement tests: an app with keys, users of each role, a funded program."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from chopay import jobs
from chopay.cli.keys import ensure_keys
from chopay.config import Settings
from chopay.db import get_db
from chopay.users import create_user
from tests.chopay.conftest import make_app  # noqa: F401  (apps with other settings)
from tests.disbursement.helpers import BIN

PROGRAM = {
    "code": "TCXH",
    "name": "Trợ cấp xã hội hằng tháng",
    "legal_basis": "Nghị định 20/2021/NĐ-CP",
    "monthly_amount": 500_000,
    "cap": 1_000_000,
    "source_bin": BIN,
    "source_account": "0011000000001",
}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Give every disbursement test app its keys, and checkpoints without a minimum interval."""
    ensure_keys(settings)
    return dataclasses.replace(settings, checkpoint_interval=0.0)


@pytest.fixture
def user(app: Flask) -> Callable[[str], tuple[int, dict[str, str]]]:
    """Return a factory of users of a role: their id and Authorization header."""

    def factory(role: str) -> tuple[int, dict[str, str]]:
        with get_db(app).unit_of_work() as s:
            issued = create_user(s, name=f"Test {role}", role=role)
        return issued.user.id, {"Authorization": f"Bearer {issued.token}"}

    return factory


@pytest.fixture
def officer(user: Callable[[str], tuple[int, dict[str, str]]]) -> dict[str, str]:
    return user("officer")[1]


@pytest.fixture
def admin(user: Callable[[str], tuple[int, dict[str, str]]]) -> dict[str, str]:
    return user("admin")[1]


@pytest.fixture
def approver(user: Callable[[str], tuple[int, dict[str, str]]]) -> dict[str, str]:
    return user("approver")[1]


@pytest.fixture
def program(client: FlaskClient, officer: dict[str, str], admin: dict[str, str]) -> dict[str, Any]:
    """Create the program TCXH and fund it with 10 billion dong."""
    resp = client.post("/v1/programs", json=PROGRAM, headers=officer)
    assert resp.status_code == 201, resp.get_json()
    resp = client.post(
        "/v1/programs/TCXH/funding", json={"amount": 10_000_000_000, "reference": "QD-2026-11"}, headers=admin
    )
    assert resp.status_code == 201, resp.get_json()
    return client.get("/v1/programs/TCXH", headers=officer).get_json()


@pytest.fixture
def run_jobs(app: Flask) -> Callable[[], int]:
    """Return a function running every queued job (validation, sequencing) to completion."""

    def run() -> int:
        runner = jobs.runner(app)
        assert isinstance(runner, jobs.InlineRunner)
        return runner.run_pending()

    return run

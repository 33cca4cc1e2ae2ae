"""Fixtures of the disbursement tests: an app with keys, users of each role, a funded program."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from flask import Flask
from flask.testing import FlaskClient

from chopay import jobs
from chopay.cli.keys import ensure_keys
from chopay.config import Settings
from chopay.crypto import data_keys
from chopay.db import get_db
from chopay.users import create_user
from disbursement.services import programs, registry
from payments.rails.fakebank import config as cfg
from payments.rails.payos import PayosRail
from tests.chopay.conftest import make_app  # noqa: F401  (apps with other settings)
from tests.disbursement.helpers import BIN, person

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


@pytest.fixture
def bank_options() -> dict[str, Any]:
    """Override to configure the in-process bank simulator the payout rail talks to."""
    return {}


@pytest.fixture
def bank(tmp_path: Path, bank_options: dict[str, Any]) -> Iterator[Flask]:
    """Return the bank simulator's app (in-process, on its own SQLite file)."""
    from tests.payments.rails.conftest import make_bank

    simulator = make_bank(tmp_path, **bank_options)
    yield simulator
    simulator.extensions["fakebank"].engine.dispose()


@pytest.fixture
def bank_client(bank: Flask) -> Iterator[httpx.Client]:
    """Return an httpx client into the simulator, for its admin endpoints."""
    with httpx.Client(transport=httpx.WSGITransport(app=bank), base_url="http://fakebank") as http:
        yield http


@pytest.fixture(autouse=True)
def payout_rail(request: pytest.FixtureRequest) -> None:
    """Point every app of a test at the in-process simulator, built on first use."""
    if "app" not in request.fixturenames:
        return
    app: Flask = request.getfixturevalue("app")

    def build() -> PayosRail:
        client: httpx.Client = request.getfixturevalue("bank_client")
        return PayosRail(
            base_url="http://fakebank",
            client_id=cfg.DEMO_CLIENT_ID,
            api_key=cfg.DEMO_API_KEY,
            checksum_key=cfg.DEMO_CHECKSUM_KEY,
            http_client=client,
        )

    app.extensions.setdefault("chopay.payout_rail", build)


@pytest.fixture
def people(app: Flask, program: dict[str, Any]) -> list[dict[str, Any]]:
    """Register and enrol people 1-20: 17 suspended, 18 deceased, 19 not enrolled, 20 without an account."""
    made = []
    with app.app_context(), get_db(app).unit_of_work() as s:
        tcxh = programs.get_program(s, "TCXH")
        for i in range(1, 21):
            values = person(i)
            if i == 17:
                values["status"] = "suspended"
            if i == 18:
                values["status"] = "deceased"
            if i == 20:
                values["bin"] = values["account_number"] = None
            values["date_of_birth"] = __import__("datetime").date.fromisoformat(values["date_of_birth"])
            created = registry.create(s, data_keys(app), values)
            if i != 19:
                programs.enrol(s, tcxh, created.id, enrolled_from="2026-01")
            made.append({**person(i), "id": created.id})
    return made

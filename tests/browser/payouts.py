"""Batches for the browser tests, set up through the API of the served app (bearer tokens)."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from flask.testing import FlaskClient

from chopay.crypto import data_keys
from chopay.db import get_db
from disbursement.services import programs, registry
from tests.browser.conftest import Live
from tests.disbursement.conftest import PROGRAM
from tests.disbursement.helpers import person
from tests.disbursement.test_batches import row


def wait(read: Callable[[], Any], wanted: set[Any], seconds: float = 30.0) -> Any:
    """Call ``read`` until it answers one of ``wanted``; fail after ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        value = read()
        if value in wanted:
            return value
        assert time.monotonic() < deadline, f"still {value!r}"
        time.sleep(0.2)


@dataclass
class Run:
    """An approved batch: its API address, a client into the app and an officer's header."""

    http: FlaskClient
    url: str
    officer: dict[str, str]

    @property
    def id(self) -> int:
        return int(self.url.rsplit("/", 1)[1])

    def status(self) -> str:
        found: str = self.http.get(self.url, headers=self.officer).get_json()["status"]
        return found

    def wait(self, wanted: set[str]) -> str:
        found: str = wait(self.status, wanted)
        return found


def approved_batch(live: Live, code: str, serials: Iterable[int], amount: int = 500_000) -> Run:
    """Create and fund program ``code``, enrol fake people ``serials``, and approve a batch for them."""
    http = live.app.test_client()
    officer, admin, approver = (
        {"Authorization": f"Bearer {live.token(r)}"} for r in ("officer", "admin", "approver")
    )
    made = http.post("/v1/programs", json={**PROGRAM, "code": code}, headers=officer)
    assert made.status_code == 201, made.get_json()
    funded = http.post(
        f"/v1/programs/{code}/funding", json={"amount": 100_000_000, "reference": "QD-2026-12"}, headers=admin
    )
    assert funded.status_code == 201, funded.get_json()
    people = [person(i) for i in serials]
    with get_db(live.app).unit_of_work() as s:
        program = programs.get_program(s, code)
        for values in people:
            born = dt.date.fromisoformat(values["date_of_birth"])
            created = registry.create(s, data_keys(live.app), {**values, "date_of_birth": born})
            programs.enrol(s, program, created.id, enrolled_from="2026-01")
    rows = [row(p, amount=amount) for p in people]
    body = {
        "program": code,
        "period": "2026-12",
        "declared_count": len(rows),
        "declared_total": amount * len(rows),
        "items": rows,
    }
    batch = http.post("/v1/batches", json=body, headers=officer)
    assert batch.status_code == 202, batch.get_json()
    run = Run(http, batch.headers["Location"], officer)
    run.wait({"ready"})
    approved = http.post(f"{run.url}/approve", json={"exclude_invalid": False}, headers=approver)
    assert approved.status_code == 200, approved.get_json()
    return run

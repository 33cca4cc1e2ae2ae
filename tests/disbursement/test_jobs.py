"""The validation job: resumable after a crash, never run twice at once, picked up again by the sweep."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from chopay import jobs
from chopay.db import get_db
from disbursement import jobs as disbursement_jobs
from disbursement.models import Batch, BatchError, PayoutItem
from disbursement.services import validation
from tests.disbursement.helpers import person


@pytest.fixture
def batch(client: FlaskClient, program: dict[str, Any], officer: dict[str, str]) -> int:
    """A batch of 7 rows (6 enrolled people and one of them twice), not validated yet."""
    for i in range(1, 7):
        created = client.post("/v1/beneficiaries", json=person(i), headers=officer).get_json()
        client.post(
            "/v1/programs/TCXH/enrolments",
            json={"beneficiary_id": created["id"], "enrolled_from": "2026-01"},
            headers=officer,
        )
    items = [
        {"national_id": person(i)["national_id"], "full_name": person(i)["full_name"], "amount": 500_000}
        for i in (1, 2, 3, 4, 5, 6, 1)
    ]
    resp = client.post(
        "/v1/batches",
        json={
            "program": "TCXH",
            "period": "2026-11",
            "declared_count": 7,
            "declared_total": 3_500_000,
            "items": items,
        },
        headers=officer,
    )
    return int(resp.get_json()["id"])


def _state(app: Flask, batch_id: int) -> tuple[str, int, int, int, int, int]:
    with get_db(app).read_session() as s:
        b = s.get(Batch, batch_id)
        assert b is not None
        items = s.scalar(
            sa.select(sa.func.count()).select_from(PayoutItem).where(PayoutItem.batch_id == batch_id)
        )
        errors = s.scalar(
            sa.select(sa.func.count()).select_from(BatchError).where(BatchError.batch_id == batch_id)
        )
        return b.status, b.rows_checked, b.rows_valid, b.rows_invalid, items or 0, errors or 0


def test_a_run_that_dies_is_resumed_by_the_sweep_and_counts_nothing_twice(
    app: Flask, batch: int, monkeypatch: pytest.MonkeyPatch, run_jobs: Callable[[], int]
):
    real = validation.check_chunk
    calls = []

    def dies_on_the_third_chunk(*args: Any, **kwargs: Any) -> list[int]:
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("worker killed")
        return real(*args, **kwargs)

    monkeypatch.setattr(validation, "check_chunk", dies_on_the_third_chunk)
    with app.app_context(), pytest.raises(RuntimeError):
        disbursement_jobs.validate_batch(batch, chunk=2)
    assert _state(app, batch) == ("validating", 4, 4, 0, 4, 0)  # two chunks committed, the third rolled back
    monkeypatch.setattr(validation, "check_chunk", real)
    with app.app_context():
        disbursement_jobs.resume_validations()  # the lease is still held: nothing to resume yet
        jobs.runner(app).run_pending()
        assert _state(app, batch)[0] == "validating"
        with get_db(app).unit_of_work() as s:
            s.execute(
                sa.update(Batch)
                .where(Batch.id == batch)
                .values(lease_until=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
            )
        disbursement_jobs.resume_validations()
    run_jobs()
    assert _state(app, batch) == ("ready", 7, 6, 1, 6, 1)  # the 7th row duplicates the 1st, across the crash


def test_a_second_run_does_nothing_while_the_first_holds_the_lease(app: Flask, batch: int):
    with app.app_context(), get_db(app).unit_of_work() as s:
        assert validation.claim(s, batch, "other-run") is not None
    with app.app_context():
        disbursement_jobs.validate_batch(batch)
    assert _state(app, batch) == ("validating", 0, 0, 0, 0, 0)


def test_a_run_whose_lease_was_taken_over_stops(app: Flask, batch: int, monkeypatch: pytest.MonkeyPatch):
    real = validation.check_chunk

    def taken_over(session: Any, keys: Any, batch_id: int, owner: str, *args: Any) -> list[int]:
        session.execute(sa.update(Batch).where(Batch.id == batch_id).values(lease_owner="newer-run"))
        return real(session, keys, batch_id, owner, *args)

    monkeypatch.setattr(validation, "check_chunk", taken_over)
    with app.app_context():
        disbursement_jobs.validate_batch(batch, chunk=3)
    assert _state(app, batch) == ("validating", 0, 0, 0, 0, 0)


def test_validating_an_already_validated_batch_changes_nothing(
    app: Flask, batch: int, run_jobs: Callable[[], int]
):
    run_jobs()
    before = _state(app, batch)
    with app.app_context():
        disbursement_jobs.validate_batch(batch)
    assert _state(app, batch) == before == ("ready", 7, 6, 1, 6, 1)

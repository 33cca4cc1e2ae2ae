"""Races on PostgreSQL with real commits: approvals at once, and two batches claiming the same people."""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from chopay.cli.keys import ensure_keys
from chopay.crypto import data_keys
from chopay.db import get_db
from chopay.errors import ChopayError
from chopay.users import create_user
from disbursement import jobs as disbursement_jobs
from disbursement.models import Approval, Batch, PayoutItem
from disbursement.services import batches, programs, registry
from tests.disbursement.helpers import BIN, person

pytestmark = [pytest.mark.postgres, pytest.mark.postgresql_only]  # races need row locks


@pytest.fixture
def office(committed_app: Flask, database_url: str) -> dict[str, Any]:
    """A funded program, 30 enrolled people, an officer and five approvers, all committed."""
    app = committed_app
    ensure_keys(app.config["CHOPAY"])
    keys = data_keys(app)
    with app.app_context(), get_db(app).unit_of_work() as s:
        officer = create_user(s, name="Test officer", role="officer").user.id
        approvers = [create_user(s, name=f"Test approver {i}", role="approver").user.id for i in range(5)]
        program = programs.create_program(
            s,
            code="TCXH",
            name="Test",
            legal_basis="Test",
            monthly_amount=500_000,
            cap=1_000_000,
            source_bin=BIN,
            source_account="0011000000001",
        )
        programs.fund(s, "TCXH", amount=10**10, reference="F1", created_by=None)
        people = []
        for i in range(1, 31):
            values = {**person(i), "date_of_birth": dt.date.fromisoformat(person(i)["date_of_birth"])}
            people.append(registry.create(s, keys, values).id)
            programs.enrol(s, program, people[-1], enrolled_from="2026-01")
    return {"app": app, "officer": officer, "approvers": approvers, "people": people}


def _batch(office: dict[str, Any], serials: range) -> int:
    app = office["app"]
    items = [
        {"national_id": person(i)["national_id"], "full_name": person(i)["full_name"], "amount": 500_000}
        for i in serials
    ]
    with app.app_context(), get_db(app).unit_of_work() as s:
        batch = batches.create(
            s,
            data_keys(app),
            program="TCXH",
            period="2026-11",
            declared_count=len(items),
            declared_total=500_000 * len(items),
            created_by=office["officer"],
            items=items,
        )
        return batch.id


def _together(calls: list[Callable[[], Any]]) -> list[Any]:
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = calls[i]()
        except ChopayError as exc:
            results[i] = exc.code

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def test_concurrent_approvals_record_each_approver_once_and_approve_once(office: dict[str, Any]):
    app = office["app"]
    batch_id = _batch(office, range(1, 21))
    with app.app_context():
        disbursement_jobs.validate_batch(batch_id)

    def approve(user_id: int) -> Callable[[], Any]:
        def call() -> Any:
            with app.app_context(), get_db(app).unit_of_work() as s:
                return batches.approve(s, batch_id, user_id=user_id, exclude_invalid=False, required=2).status

        return call

    first, second, third = office["approvers"][:3]
    outcomes = _together([approve(u) for u in (first, first, second, second, third, third)])
    with get_db(app).read_session() as s:
        approvals = list(s.scalars(sa.select(Approval.user_id).where(Approval.batch_id == batch_id)))
        batch = s.get(Batch, batch_id)
        refs = list(s.scalars(sa.select(PayoutItem.reference).where(PayoutItem.batch_id == batch_id)))
    assert batch is not None
    assert batch.status == "approved"
    assert len(approvals) == 2
    assert len(set(approvals)) == 2
    counted = Counter(outcomes)
    assert counted["approved"] == 1
    assert counted["ready"] == 1
    assert set(counted) <= {"approved", "ready", "already_approved_by_you", "batch_already_approved"}
    assert len(refs) == 20
    assert len(set(refs)) == 20
    assert all(refs)


def test_two_batches_validated_at_once_never_share_an_entitlement(office: dict[str, Any]):
    app = office["app"]
    one, two = _batch(office, range(1, 31)), _batch(office, range(1, 31))

    def validate(batch_id: int) -> Callable[[], Any]:
        def call() -> Any:
            with app.app_context():
                disbursement_jobs.validate_batch(batch_id, chunk=4)

        return call

    _together([validate(one), validate(two)])
    with get_db(app).read_session() as s:
        holders = Counter(s.scalars(sa.select(PayoutItem.beneficiary_id).where(PayoutItem.entitled)))
        found = {b.id: (b.status, b.rows_valid, b.rows_invalid) for b in s.scalars(sa.select(Batch))}
    assert set(holders.values()) == {1}
    assert len(holders) == 30
    assert found[one][1] + found[two][1] == 30
    assert found[one][2] + found[two][2] == 30  # each person is "already in a batch" in the other

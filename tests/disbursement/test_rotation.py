"""Rotation of the data key: every protected column re-encrypted, resumable, nothing lost."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient

from chopay import keyrotation
from chopay.cli import main
from chopay.crypto import PROTECTED_COLUMNS, data_keys
from chopay.db import get_db
from disbursement.models import Beneficiary, PayoutItem
from disbursement.services import registry
from tests.disbursement.helpers import person


def _register(app: Flask, count: int) -> None:
    with app.app_context(), get_db(app).unit_of_work() as s:
        for i in range(1, count + 1):
            values = {**person(i), "date_of_birth": dt.date.fromisoformat(person(i)["date_of_birth"])}
            registry.create(s, data_keys(app), values)


def _plain(app: Flask) -> list[dict[str, Any]]:
    with app.app_context(), get_db(app).read_session() as s:
        return [
            registry.plain(data_keys(app), b)
            for b in s.scalars(sa.select(Beneficiary).order_by(Beneficiary.id))
        ]


def test_every_registered_column_is_covered():
    declared = {(c.table, c.column) for c in PROTECTED_COLUMNS}
    assert {
        ("beneficiaries", "national_id"),
        ("beneficiaries", "phone"),
        ("beneficiaries", "account_number"),
        ("payout_items", "account_number"),
        ("disbursement_upload_chunks", "data"),
    } <= declared


def test_rotation_reencrypts_everything_in_batches_and_resumes(app: Flask, settings: Any):
    _register(app, 7)
    before = _plain(app)
    rotated = keyrotation.add_key(settings.keys_dir)
    assert rotated.active == "d2"
    assert set(rotated.keys) == {"d1", "d2"}
    assert data_keys(app).active == "d2"  # the running app picked the new key file up
    with app.app_context(), get_db(app).unit_of_work() as s:
        keyrotation.request(s, "d2")
    column = next(c for c in PROTECTED_COLUMNS if (c.table, c.column) == ("beneficiaries", "national_id"))
    with app.app_context(), get_db(app).unit_of_work() as s:  # a run interrupted after one batch of 3
        step = keyrotation.reencrypt_batch(s, rotated, column, None, limit=3)
    assert (step.reencrypted, step.done) == (3, False)
    with app.app_context(), get_db(app).read_session() as s:
        assert keyrotation.key_counts(s)["beneficiaries.national_id"] == {"d1": 4, "d2": 3}
    with app.app_context():
        done = keyrotation.run(get_db(app), rotated, batch=2)
    assert (done.reencrypted, done.unreadable) == (
        4 + 7 + 7,
        0,
    )  # the rest of the ids, every phone and account
    with app.app_context(), get_db(app).read_session() as s:
        counts = keyrotation.key_counts(s)
        assert counts["beneficiaries.national_id"] == {"d2": 7}
        assert counts["beneficiaries.phone"] == {"d2": 7}
        assert keyrotation.unfinished(s) is None
    assert _plain(app) == before  # nothing lost, nothing changed
    with app.app_context():
        assert keyrotation.run(get_db(app), rotated).reencrypted == 0  # a second run has nothing to do


def test_a_value_under_no_known_key_is_left_untouched(app: Flask, settings: Any):
    _register(app, 2)
    with app.app_context(), get_db(app).unit_of_work() as s:
        first = s.scalar(sa.select(sa.func.min(Beneficiary.id)))
        s.execute(sa.update(Beneficiary).where(Beneficiary.id == first).values(phone="zz:garbage"))
    rotated = keyrotation.add_key(settings.keys_dir)
    with app.app_context():
        done = keyrotation.run(get_db(app), rotated)
    assert done.unreadable == 1
    with app.app_context(), get_db(app).read_session() as s:
        assert s.scalar(sa.select(Beneficiary.phone).where(Beneficiary.id == first)) == "zz:garbage"


def test_the_sweep_runs_the_job_only_while_a_rotation_is_unfinished(app: Flask, settings: Any):
    _register(app, 1)
    with app.app_context():
        assert not keyrotation._due()
        rotated = keyrotation.add_key(settings.keys_dir)
        with get_db(app).unit_of_work() as s:
            keyrotation.request(s, rotated.active)
        assert keyrotation._due()
        keyrotation.reencrypt()
        assert not keyrotation._due()


def test_cli_rotate_data_now(runner: CliRunner, tmp_path: Path):
    assert runner.invoke(main, ["init"]).exit_code == 0
    result = runner.invoke(main, ["keys", "rotate-data", "--now"])
    assert result.exit_code == 0, result.output
    assert "data key d2 is now active (1 older key(s) kept to read)" in result.output
    assert "re-encrypted 0 value(s); 0 could not be opened" in result.output
    status = runner.invoke(main, ["keys", "data-status"])
    assert "beneficiaries.national_id" in status.output
    assert "empty" in status.output


def test_item_account_numbers_rotate_too(
    client: FlaskClient,
    app: Flask,
    settings: Any,
    program: dict[str, Any],
    officer: dict[str, str],
    run_jobs: Any,
):
    created = client.post("/v1/beneficiaries", json=person(1), headers=officer).get_json()
    client.post(
        "/v1/programs/TCXH/enrolments",
        json={"beneficiary_id": created["id"], "enrolled_from": "2026-01"},
        headers=officer,
    )
    items = [
        {"national_id": person(1)["national_id"], "full_name": person(1)["full_name"], "amount": 500_000}
    ]
    client.post(
        "/v1/batches",
        json={
            "program": "TCXH",
            "period": "2026-11",
            "declared_count": 1,
            "declared_total": 500_000,
            "items": items,
        },
        headers=officer,
    )
    run_jobs()
    batch_id = client.get("/v1/batches", headers=officer).get_json()["items"][0]["id"]
    shown = client.get(f"/v1/batches/{batch_id}/items", headers=officer).get_json()["items"][0][
        "account_number"
    ]
    rotated = keyrotation.add_key(settings.keys_dir)
    with app.app_context():
        keyrotation.run(get_db(app), rotated)
    with app.app_context(), get_db(app).read_session() as s:
        assert s.scalar(sa.select(PayoutItem.account_number)).startswith("d2:")
    items = client.get(f"/v1/batches/{batch_id}/items", headers=officer).get_json()["items"]
    assert items[0]["account_number"] == shown

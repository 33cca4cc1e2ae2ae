"""Races with real commits: one vendor registered, or one file imported, by several clients at once."""

from __future__ import annotations

import io
import threading
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from flask import Flask

from chopay.cli.keys import ensure_keys
from chopay.crypto import data_keys
from chopay.db import get_db
from chopay.users import create_user
from merchants.models import Merchant
from merchants.services import imports
from tests.disbursement.helpers import csv_file
from tests.merchants.conftest import vendor
from tests.merchants.test_import import HEADER, rows


def _race(count: int, work: Callable[[int], Any]) -> list[Any]:
    start = threading.Barrier(count)
    results: list[Any] = [None] * count

    def run(i: int) -> None:
        start.wait()
        try:
            results[i] = work(i)
        except Exception as exc:  # the test looks at what each client got
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def _count(app: Flask) -> int:
    with get_db(app).read_session() as s:
        return int(s.scalar(sa.select(sa.func.count()).select_from(Merchant)) or 0)


def test_concurrent_registrations_of_one_account_create_one_merchant(committed_app: Flask) -> None:
    app = committed_app
    ensure_keys(app.config["CHOPAY"])
    with app.app_context(), get_db(app).unit_of_work() as s:
        token = create_user(s, name="Test officer", role="officer").token
    headers = {"Authorization": f"Bearer {token}"}

    def register(i: int) -> int:
        resp = app.test_client().post("/v1/merchants", json=vendor(1, stall=f"S-{i}"), headers=headers)
        return resp.status_code

    statuses = _race(6, register)
    assert sorted(statuses) == [201, 409, 409, 409, 409, 409]
    assert _count(app) == 1


def test_concurrent_imports_of_one_file_create_each_row_once(committed_app: Flask) -> None:
    app = committed_app
    ensure_keys(app.config["CHOPAY"])
    data = csv_file(HEADER, rows(1, 2, 3, 4))

    def run(_: int) -> imports.ImportReport:
        with app.app_context(), get_db(app).unit_of_work() as s:
            return imports.import_file(s, data_keys(app), io.BytesIO(data), by=None)

    reports = _race(4, run)
    assert all(isinstance(r, imports.ImportReport) for r in reports), reports
    assert sum(r.created for r in reports) == 4
    assert all(r.created + r.existing == 4 and r.rejected == 0 for r in reports)
    assert _count(app) == 4

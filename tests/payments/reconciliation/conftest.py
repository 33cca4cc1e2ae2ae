"""Fixtures of the reconciliation service tests: keys, a funded program book, uploads, jobs."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from chopay import jobs
from chopay.cli.keys import ensure_keys
from chopay.config import Settings
from chopay.db import get_db
from payments.ledger import jobs as ledger_jobs
from payments.ledger import services as ledger
from payments.ledger.domain import Posting, Recorded, TransactionSpec
from payments.reconciliation.ledger import day_start

BUDGET = "program:TCXH:budget"
BENEFITS = "program:TCXH:benefits"
FUNDING = "program:TCXH:funding"
SALES = "income:receipts"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Give every test app a signing key, data keys and checkpoints without a minimum interval."""
    ensure_keys(settings)
    return dataclasses.replace(settings, checkpoint_interval=0.0)


@pytest.fixture
def auditor(make_token: Callable[..., str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {make_token('auditor', name='Auditor Tran Thi Test')}"}


@pytest.fixture
def admin(make_token: Callable[..., str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {make_token('admin')}"}


class Book:
    """Posts to a program's accounts the way funding, payouts and receipts post."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        with get_db(app).unit_of_work() as s:
            ledger.ensure_account(s, code=BUDGET, kind="asset", allow_negative=False)
            ledger.ensure_account(s, code=BENEFITS, kind="expense")
            ledger.ensure_account(s, code=FUNDING, kind="equity")
            ledger.ensure_account(s, code=SALES, kind="income")

    def post(self, key: str, kind: str, amount: int, day: dt.date, counter: str, **metadata: Any) -> Recorded:
        """Post ``amount`` on the budget (positive into it) against ``counter``, dated on ``day``."""
        spec = TransactionSpec(
            idempotency_key=key,
            kind=kind,
            memo=f"{kind} {key}",
            postings=[Posting(BUDGET, amount), Posting(counter, -amount)],
            occurred_at=day_start(day) + dt.timedelta(hours=10),
            metadata=metadata,
        )
        with get_db(self.app).unit_of_work() as s:
            return ledger.post(s, spec)

    def fund(self, key: str, amount: int, day: dt.date, **metadata: Any) -> Recorded:
        """Fund the budget."""
        return self.post(key, "funding", amount, day, FUNDING, **metadata)

    def payout(self, ref: str, amount: int, day: dt.date, **metadata: Any) -> Recorded:
        """Record a paid payout as the payout batch does: benefits debited, budget credited."""
        return self.post(f"payout:{ref}", "payout", -amount, day, BENEFITS, payout_ref=ref, **metadata)

    def seal(self) -> None:
        """Sequence everything and sign a checkpoint now."""
        ledger_jobs.seal(get_db(self.app), self.app.config["CHOPAY"], force=True)


@pytest.fixture
def book(app: Flask) -> Book:
    return Book(app)


def run_jobs(app: Flask) -> int:
    """Run every queued job of the in-process runner; return how many ran."""
    with app.app_context():
        return jobs.runner(app).run_pending()  # type: ignore[attr-defined,no-any-return]


def upload(
    client: FlaskClient,
    headers: dict[str, str],
    data: bytes,
    *,
    account: str = BUDGET,
    name: str = "statement.txt",
    **fields: str,
) -> TestResponse:
    """POST a statement file as multipart/form-data."""
    from io import BytesIO

    form: dict[str, Any] = {"account": account, **fields, "statement": (BytesIO(data), name)}
    return client.post("/v1/reconciliations", headers=headers, data=form, content_type="multipart/form-data")

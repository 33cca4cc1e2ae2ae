"""The caller owns the transaction: a feature's writes and its ledger posting land together or not at all."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import sqlalchemy as sa
from flask import Flask, jsonify
from sqlalchemy.orm import Session

from chopay import db
from chopay.errors import Unprocessable
from chopay.users import User, create_user
from payments.ledger import services
from payments.ledger.domain import Posting, TransactionSpec
from payments.ledger.models import Account, Transaction
from tests.chopay.helpers import assert_problem, capture_logs


def _spec(key: str, amount: int = 50_000) -> TransactionSpec:
    return TransactionSpec(
        key, "receipt", "a sale", [Posting("merchant:M1:bank", amount), Posting("merchant:M1:sales", -amount)]
    )


@pytest.fixture
def feature_app(make_app: Callable[..., Flask]) -> Flask:
    """An app with a test-only feature: it records a row, posts to the ledger, then maybe fails."""
    application = make_app()
    with db.get_db(application).unit_of_work() as s:
        services.create_account(s, code="merchant:M1:bank", kind="asset")
        services.create_account(s, code="merchant:M1:sales", kind="income")

    @application.post("/test-only/sale/<how>")
    def sale(how: str):
        s = db.session()
        create_user(s, name=f"Test Vendor {how}", role="officer")  # the feature's own write
        services.post(s, _spec(f"sale-{how}"))  # its ledger posting, in the same unit of work
        if how == "refused":
            raise Unprocessable("The feature found a rule broken after posting.", code="rule_broken")
        if how == "crashed":
            raise RuntimeError("deliberate crash after posting")
        return jsonify(ok=True), 201

    return application


def _state(app: Flask) -> tuple[int, int, int]:
    with db.get_db(app).session() as s:
        users = s.scalar(sa.select(sa.func.count()).select_from(User).where(User.name.like("Test Vendor%")))
        txs = s.scalar(sa.select(sa.func.count()).select_from(Transaction))
        bank = s.scalar(sa.select(Account.balance).where(Account.code == "merchant:M1:bank"))
    return int(users or 0), int(txs or 0), int(bank or 0)


@pytest.mark.parametrize(("how", "status"), [("refused", 422), ("crashed", 500)])
def test_a_feature_that_fails_after_posting_leaves_nothing(feature_app: Flask, how: str, status: int):
    before = _state(feature_app)
    resp = feature_app.test_client().post(f"/test-only/sale/{how}")
    assert resp.status_code == status
    assert _state(feature_app) == before


def test_a_feature_that_succeeds_commits_its_row_and_its_posting_together(feature_app: Flask):
    users, txs, bank = _state(feature_app)
    assert feature_app.test_client().post("/test-only/sale/ok").status_code == 201
    assert _state(feature_app) == (users + 1, txs + 1, bank + 50_000)


def test_a_unit_of_work_that_raises_writes_nothing(app: Flask):
    with db.get_db(app).unit_of_work() as s:
        services.create_account(s, code="merchant:M1:bank", kind="asset")
        services.create_account(s, code="merchant:M1:sales", kind="income")

    def job() -> None:
        with db.get_db(app).unit_of_work() as s:
            services.post(s, _spec("job-1"))
            create_user(s, name="Test Vendor Job", role="officer")
            raise RuntimeError("the job failed half-way")

    with pytest.raises(RuntimeError, match="half-way"):
        job()
    assert _state(app) == (0, 0, 0)


def test_a_refused_post_leaves_the_callers_transaction_usable(app: Flask, session: Session):
    services.create_account(session, code="program:P:budget", kind="asset", allow_negative=False)
    services.create_account(session, code="program:P:benefits", kind="expense")
    create_user(session, name="Test Vendor Before", role="officer")
    spec = TransactionSpec(
        "pay-1", "payout", "x", [Posting("program:P:benefits", 10), Posting("program:P:budget", -10)]
    )
    with pytest.raises(services.InsufficientBalance):
        services.post(session, spec)
    create_user(session, name="Test Vendor After", role="officer")  # the transaction still works
    session.flush()
    names = session.scalars(sa.select(User.name).where(User.name.like("Test Vendor%")).order_by(User.id))
    assert list(names) == ["Test Vendor Before", "Test Vendor After"]


@pytest.fixture
def hooks(app: Flask) -> Iterator[tuple[Session, list[str]]]:
    ran: list[str] = []
    with db.get_db(app).sessionmaker() as s:
        yield s, ran


def test_after_commit_work_runs_once_after_the_commit(hooks):
    s, ran = hooks
    record = lambda: ran.append("signal")  # noqa: E731
    db.after_commit(s, record)
    db.after_commit(s, record)  # the same work registered twice runs once
    s.execute(sa.text("SELECT 1"))
    assert ran == []
    s.commit()
    assert ran == ["signal"]
    s.commit()
    assert ran == ["signal"]


def test_after_commit_work_is_dropped_on_rollback(hooks):
    s, ran = hooks
    s.execute(sa.text("SELECT 1"))
    db.after_commit(s, lambda: ran.append("signal"))
    s.rollback()
    s.execute(sa.text("SELECT 1"))
    s.commit()
    assert ran == []


def test_a_failing_after_commit_task_is_logged_and_does_not_undo_the_commit(hooks):
    s, ran = hooks

    def broken() -> None:
        raise ConnectionError("redis is down")

    create_user(s, name="Test Vendor Hook", role="officer")
    db.after_commit(s, broken)
    db.after_commit(s, lambda: ran.append("next"))
    with capture_logs() as logs:
        s.commit()  # no exception reaches the caller
    assert ran == ["next"]
    (line,) = logs.named("chopay.db")
    assert line["msg"] == "after-commit task failed"
    assert s.scalar(sa.select(sa.func.count()).select_from(User).where(User.name == "Test Vendor Hook")) == 1


def test_with_redis_down_a_committed_post_is_still_a_201(make_app: Callable[..., Flask], make_token):
    # Nothing listens on port 1: every enqueue fails once the transaction has committed.
    application = make_app(redis_url="redis://127.0.0.1:1/0", inline_jobs=False)
    token = make_token("admin")
    with db.get_db(application).unit_of_work() as s:
        services.create_account(s, code="merchant:M1:bank", kind="asset")
        services.create_account(s, code="merchant:M1:sales", kind="income")
    body = {
        "memo": "during an outage",
        "postings": [
            {"account": "merchant:M1:bank", "amount": 1},
            {"account": "merchant:M1:sales", "amount": -1},
        ],
    }
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": "outage-1"}
    with capture_logs() as logs:
        resp = application.test_client().post("/v1/ledger/transactions", json=body, headers=headers)
    assert resp.status_code == 201
    assert any(line["msg"] == "after-commit task failed" for line in logs.named("chopay.db"))
    replay = application.test_client().post("/v1/ledger/transactions", json=body, headers=headers)
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.get_json()["id"] == resp.get_json()["id"]
    with db.get_db(application).session() as s:
        assert s.scalar(sa.select(Account.balance).where(Account.code == "merchant:M1:bank")) == 1


def test_a_4xx_from_a_view_writes_nothing_even_with_an_idempotency_key(
    client, admin_headers, session: Session
):
    headers = {**admin_headers, "Idempotency-Key": "merchant-needed"}
    resp = client.post("/v1/users", json={"name": "Test Vendor X", "role": "merchant"}, headers=headers)
    assert_problem(resp, 422, "merchant_required")
    assert (
        session.scalar(sa.select(sa.func.count()).select_from(User).where(User.name == "Test Vendor X")) == 0
    )

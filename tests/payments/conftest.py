"""Fixtures for the ledger's database-backed tests."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest
from flask import Flask
from sqlalchemy.orm import Session

from chopay.cli.keys import ensure_keys
from chopay.config import Settings
from payments.ledger import keys, services
from payments.ledger.domain import Posting, TransactionSpec
from payments.ledger.note import Signer, Verifier


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Give every ledger test app a signing key and checkpoints without a minimum interval."""
    ensure_keys(settings)
    return dataclasses.replace(settings, checkpoint_interval=0.0)


@pytest.fixture
def signer(settings: Settings) -> Signer:
    found = keys.load_signer(settings)
    assert found is not None
    return found


@pytest.fixture
def verifier(signer: Signer) -> Verifier:
    return signer.verifier


@pytest.fixture
def book(app: Flask, session: Session) -> Session:
    """Open the accounts the ledger tests post against and return the session."""
    with app.app_context():
        services.create_account(session, code="bank:settlement", kind="asset")
        services.create_account(session, code="program:TCXH:budget", kind="asset", allow_negative=False)
        services.create_account(session, code="payouts:clearing", kind="liability")
        services.create_account(session, code="equity:opening", kind="equity")
    return session


@pytest.fixture
def make_spec() -> Callable[..., TransactionSpec]:
    """Return a factory of balanced two-posting specs."""

    def factory(
        key: str,
        amount: int = 150_000,
        debit: str = "payouts:clearing",
        credit: str = "equity:opening",
        memo: str = "test entry",
        **kw: object,
    ) -> TransactionSpec:
        return TransactionSpec(
            idempotency_key=key,
            kind=str(kw.pop("kind", "journal")),
            memo=memo,
            postings=[Posting(debit, amount), Posting(credit, -amount)],
            **kw,  # type: ignore[arg-type]
        )

    return factory

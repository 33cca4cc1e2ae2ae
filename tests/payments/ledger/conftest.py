"""Keys and signed exports for the pure ledger tests (no database)."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from payments.ledger.note import Signer

from .exports import ORIGIN, Leaf, export_lines, make_leaves


@pytest.fixture(scope="session")
def log_signer() -> Signer:
    """Return the log's signing key for the synthetic exports."""
    return Signer.generate(ORIGIN)


@pytest.fixture(scope="session")
def leaves40() -> list[Leaf]:
    """Return forty chained leaves."""
    return make_leaves(40)


@pytest.fixture
def export40(leaves40: list[Leaf], log_signer: Signer) -> list[str]:
    """Return a signed export of forty entries with checkpoints at 7, 14, 21, 28, 35 and 40."""
    return export_lines(leaves40, [log_signer])


@pytest.fixture
def write_lines(tmp_path: Path) -> Callable[[Sequence[str]], Path]:
    """Return a function writing lines to a fresh export file and returning its path."""
    counter = itertools.count()

    def write(lines: Sequence[str]) -> Path:
        path = tmp_path / f"export-{next(counter)}.jsonl"
        path.write_text("".join(lines), encoding="utf-8")
        return path

    return write


ENTRY = {
    "memo": "Opening balance",
    "postings": [
        {"account": "bank:settlement", "amount": 5_000_000},
        {"account": "equity:opening", "amount": -5_000_000},
    ],
}


@pytest.fixture
def admin(make_token):
    """Return the Authorization header of a new admin."""
    return {"Authorization": f"Bearer {make_token('admin')}"}


@pytest.fixture
def auditor(make_token):
    """Return the Authorization header of a new auditor."""
    return {"Authorization": f"Bearer {make_token('auditor')}"}


@pytest.fixture
def opened(client, admin):
    """Open the accounts the API tests post against; return the client."""
    for code, kind, neg in [
        ("bank:settlement", "asset", True),
        ("equity:opening", "equity", True),
        ("program:TCXH:budget", "asset", False),
    ]:
        r = client.post(
            "/v1/ledger/accounts", headers=admin, json={"code": code, "kind": kind, "allow_negative": neg}
        )
        assert r.status_code == 201, r.json
    return client

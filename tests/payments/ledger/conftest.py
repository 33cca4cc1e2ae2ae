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

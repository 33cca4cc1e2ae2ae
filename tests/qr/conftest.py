"""Fixtures for the QR library and its command line."""

from __future__ import annotations

from collections.abc import Iterator

import click
import pytest
from click.testing import CliRunner

from qr import render


@pytest.fixture(autouse=True)
def _fresh_render_cache() -> Iterator[None]:
    """Start every test with an empty render cache, so cache assertions see only their own calls."""
    render.clear_cache()
    yield
    render.clear_cache()


@pytest.fixture
def cli() -> click.Group:
    """Return the top-level ``chopay`` command, with the ``qr`` group attached."""
    from chopay.cli import main
    from chopay.cli.qr import qr

    # chopay.cli wires the group at import, which makes this a no-op; it only matters for a
    # top-level command assembled without it, and keeps these tests on the real entry point.
    if "qr" not in main.commands:
        main.add_command(qr)
    return main


@pytest.fixture
def qr_runner() -> CliRunner:
    """Return a CLI runner; the qr commands need no database or data directory."""
    return CliRunner()

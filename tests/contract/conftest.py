"""The fuzzed app holds its keys, as one set up by `chopay init` does."""

from __future__ import annotations

import pytest

from chopay.cli.keys import ensure_keys
from chopay.config import Settings


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Give the app its ledger signing key and data keys (personal data is encrypted with them)."""
    ensure_keys(settings)
    return settings

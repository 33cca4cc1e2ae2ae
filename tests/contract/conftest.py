"""The fuzzed app has its keys, as a deployed one does after ``chopay init``."""

from __future__ import annotations

import pytest

from chopay.cli.keys import ensure_keys
from chopay.config import Settings


@pytest.fixture
def settings(settings: Settings) -> Settings:
    ensure_keys(settings)
    return settings

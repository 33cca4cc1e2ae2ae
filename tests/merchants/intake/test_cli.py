"""``chopay connectors add | list | rotate`` on a real data directory."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from chopay.cli import main


@pytest.fixture
def ready(runner: CliRunner, tmp_path: Path) -> CliRunner:
    done = runner.invoke(main, ["init"])
    assert done.exit_code == 0, done.output
    return runner


def test_add_prints_credentials_once_and_list_shows_only_hints(ready: CliRunner) -> None:
    added = ready.invoke(main, ["connectors", "add", "cho-han-sepay", "--format", "sepay", "--bin", "970436"])
    assert added.exit_code == 0, added.output
    key = re.search(r"API key:\s+(\S+)", added.output)
    assert key is not None
    assert "POST /v1/bank-notifications/sepay/cho-han-sepay" in added.output
    listed = ready.invoke(main, ["connectors", "list"])
    assert listed.exit_code == 0
    assert "cho-han-sepay" in listed.output
    assert key.group(1) not in listed.output
    assert key.group(1)[:10] in listed.output
    again = ready.invoke(main, ["connectors", "add", "cho-han-sepay", "--format", "sepay"])
    assert again.exit_code != 0
    assert "already exists" in again.output


def test_rotate_keeps_the_previous_secret_live_for_the_grace(ready: CliRunner) -> None:
    assert ready.invoke(main, ["connectors", "add", "bank-a", "--format", "chopay"]).exit_code == 0
    rotated = ready.invoke(main, ["connectors", "rotate", "bank-a", "--grace", "600"])
    assert rotated.exit_code == 0, rotated.output
    assert "1 secret(s) stay live for 600 s" in rotated.output
    listed = ready.invoke(main, ["connectors", "list"]).output
    line = next(x for x in listed.splitlines() if x.startswith("bank-a"))
    assert line.count("whsec_") == 2
    assert "until" in line
    missing = ready.invoke(main, ["connectors", "rotate", "nobody"])
    assert missing.exit_code != 0


def test_bad_names_and_formats_are_refused(ready: CliRunner) -> None:
    bad = ready.invoke(main, ["connectors", "add", "Bad Name", "--format", "chopay"])
    assert bad.exit_code != 0
    assert "connector name" in bad.output
    fmt = ready.invoke(main, ["connectors", "add", "x", "--format", "other"])
    assert fmt.exit_code != 0

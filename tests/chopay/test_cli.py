"""The ``chopay`` command: help, init, users, worker, db and keys.

The commands read ``CHOPAY_*`` from the environment; the ``runner`` fixture points
``CHOPAY_DATA_DIR`` at a fresh directory, so every command here works on its own SQLite file.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from chopay import create_app, migrate
from chopay.config import from_env
from chopay.crypto import DataKeys
from chopay.db import get_db

TOKEN_RE = re.compile(r"^cp_[A-Za-z0-9_-]{43}$", re.MULTILINE)


@pytest.fixture
def main() -> click.Group:
    """Return the ``chopay`` command group (imported here so a broken import fails one test each)."""
    from chopay.cli import main as group

    return group


@pytest.fixture
def data_dir(runner: CliRunner) -> Path:
    return Path(os.environ["CHOPAY_DATA_DIR"])


def _invoke(runner: CliRunner, main: click.Group, args: list[str]) -> Result:
    return runner.invoke(main, args, prog_name="chopay")


def _ok(result: Result) -> str:
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result.output


def _commands(
    group: click.Group, prefix: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    for name, command in sorted(group.commands.items()):
        yield (*prefix, name), command
        if isinstance(command, click.Group):
            yield from _commands(command, (*prefix, name))


EXPECTED_COMMANDS = {
    ("serve",),
    ("worker",),
    ("init",),
    ("db",),
    ("db", "upgrade"),
    ("db", "current"),
    ("users",),
    ("users", "create"),
    ("users", "list"),
    ("users", "revoke"),
    ("keys",),
    ("keys", "generate"),
}


def test_every_command_has_help_that_says_what_it_does(runner: CliRunner, main: click.Group):
    found = dict(_commands(main))
    assert set(found) >= EXPECTED_COMMANDS
    top = _ok(_invoke(runner, main, ["--help"]))
    assert "chopay" in top
    for path, command in found.items():
        summary = (command.help or "").strip().splitlines()[0] if command.help else ""
        assert len(summary) > 10, f"`chopay {' '.join(path)}` has no help text"
        output = _ok(_invoke(runner, main, [*path, "--help"]))
        assert f"Usage: chopay {' '.join(path)}" in " ".join(output.split())
        assert " ".join(summary.split()) in " ".join(output.split())


@pytest.mark.parametrize(
    ("path", "words"),
    [
        (("serve",), ["gunicorn", "--bind"]),
        (("worker",), ["rq", "CHOPAY_REDIS_URL", "--burst"]),
        (("init",), ["migrate", "keys", "admin"]),
        (("db", "upgrade"), ["migrations"]),
        (("db", "current"), ["revision"]),
        (("users", "create"), ["token", "--role", "--merchant"]),
        (("users", "list"), ["never"]),
        (("users", "revoke"), ["Revoke"]),
        (("keys", "generate"), ["signing key", "data keys"]),
    ],
)
def test_help_names_what_matters(
    runner: CliRunner, main: click.Group, path: tuple[str, ...], words: list[str]
):
    output = " ".join(_ok(_invoke(runner, main, [*path, "--help"])).split())
    for word in words:
        assert word in output


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_init_prepares_a_fresh_data_directory(runner: CliRunner, main: click.Group, data_dir: Path):
    output = _ok(_invoke(runner, main, ["init"]))
    settings = from_env()
    assert settings.database_url == f"sqlite:///{(data_dir / 'chopay.db').resolve()}"
    assert migrate.current(settings.database_url) is not None
    assert f"revision {migrate.current(settings.database_url)}" in output
    signing = data_dir / "keys" / "ledger-signing.key"
    data_keys = data_dir / "keys" / "data-keys.json"
    token_file = data_dir / "admin-token"
    for secret in (signing, data_keys, token_file):
        assert secret.is_file()
        assert _mode(secret) == 0o600, secret
    assert _mode(data_dir / "keys") == 0o700
    assert DataKeys.load(data_keys).active == "d1"
    token = token_file.read_text().strip()
    assert TOKEN_RE.fullmatch(token)
    assert token not in output  # the token goes to the 0600 file, not to the terminal
    assert str(token_file) in output


def test_init_is_idempotent(runner: CliRunner, main: click.Group, data_dir: Path):
    _ok(_invoke(runner, main, ["init"]))
    files = [
        data_dir / "keys" / "ledger-signing.key",
        data_dir / "keys" / "data-keys.json",
        data_dir / "admin-token",
    ]
    before = {f: f.read_bytes() for f in files}
    output = _ok(_invoke(runner, main, ["init"]))
    assert {f: f.read_bytes() for f in files} == before
    assert "kept" in output
    assert "admin user: exists" in output
    listing = _ok(_invoke(runner, main, ["users", "list"]))
    assert len([line for line in listing.splitlines() if " admin " in line]) == 1


def test_the_admin_token_from_init_authenticates(runner: CliRunner, main: click.Group, data_dir: Path):
    _ok(_invoke(runner, main, ["init"]))
    token = (data_dir / "admin-token").read_text().strip()
    app = create_app()
    try:
        resp = app.test_client().get("/v1/users/me", headers={"Authorization": f"Bearer {token}"})
        assert resp.status_code == 200
        assert resp.get_json()["role"] == "admin"
    finally:
        get_db(app).engine.dispose()


def test_users_create_list_revoke(runner: CliRunner, main: click.Group):
    _ok(_invoke(runner, main, ["db", "upgrade"]))
    created = _ok(_invoke(runner, main, ["users", "create", "--name", "Test Officer", "--role", "officer"]))
    tokens = TOKEN_RE.findall(created)
    assert len(tokens) == 1
    found = re.search(r"created user (\d+) \(officer\)", created)
    assert found is not None
    user_id = int(found.group(1))
    merchant = _ok(
        _invoke(
            runner,
            main,
            ["users", "create", "--name", "Test Stall", "--role", "merchant", "--merchant", "12"],
        )
    )
    tokens += TOKEN_RE.findall(merchant)

    listing = _ok(_invoke(runner, main, ["users", "list"]))
    assert "Test Officer" in listing
    assert "Test Stall" in listing
    for token in tokens:
        assert token not in listing
        assert token[8:] not in listing
    officer_line = next(line for line in listing.splitlines() if "Test Officer" in line)
    assert "active" in officer_line
    assert tokens[0][:8] + "..." in officer_line  # only the hint

    assert f"revoked user {user_id}" in _ok(_invoke(runner, main, ["users", "revoke", str(user_id)]))
    officer_line = next(
        line for line in _ok(_invoke(runner, main, ["users", "list"])).splitlines() if "Test Officer" in line
    )
    assert "revoked" in officer_line


def test_users_errors_are_clear_messages(runner: CliRunner, main: click.Group):
    _ok(_invoke(runner, main, ["db", "upgrade"]))
    result = _invoke(runner, main, ["users", "create", "--name", "Test Stall", "--role", "merchant"])
    assert result.exit_code == 1
    assert "must be bound to a merchant" in result.output
    assert "Traceback" not in result.output
    result = _invoke(runner, main, ["users", "create", "--name", "Test", "--role", "emperor"])
    assert result.exit_code == 2
    assert "emperor" in result.output
    result = _invoke(runner, main, ["users", "revoke", "999"])
    assert result.exit_code == 1
    assert "No user with id 999" in result.output
    created = _ok(_invoke(runner, main, ["users", "create", "--name", "Test Twice", "--role", "auditor"]))
    found = re.search(r"created user (\d+)", created)
    assert found is not None
    user_id = found.group(1)
    _ok(_invoke(runner, main, ["users", "revoke", user_id]))
    result = _invoke(runner, main, ["users", "revoke", user_id])
    assert result.exit_code == 1
    assert "already revoked" in result.output


def test_worker_without_redis_refuses_clearly(runner: CliRunner, main: click.Group):
    result = _invoke(runner, main, ["worker", "--burst"])
    assert result.exit_code != 0
    assert "CHOPAY_REDIS_URL" in result.output
    assert "Traceback" not in result.output


def test_worker_burst_runs_queued_jobs(
    runner: CliRunner, main: click.Group, redis_url: str, data_dir: Path, monkeypatch: pytest.MonkeyPatch
):
    from chopay import jobs
    from tests.chopay import sample_jobs

    monkeypatch.setenv("CHOPAY_REDIS_URL", redis_url)
    _ok(_invoke(runner, main, ["db", "upgrade"]))
    _ok(_invoke(runner, main, ["users", "create", "--name", "Test Seen", "--role", "auditor"]))
    app = create_app()
    out = data_dir / "calls.jsonl"
    try:
        with app.app_context():
            jobs.enqueue(sample_jobs.RECORD, str(out), "cli")
    finally:
        get_db(app).engine.dispose()
    _ok(_invoke(runner, main, ["worker", "--burst"]))
    assert sample_jobs.calls(out) == [{"label": "cli", "users": 1}]


def test_db_upgrade_and_current(runner: CliRunner, main: click.Group, data_dir: Path):
    assert "empty" in _ok(_invoke(runner, main, ["db", "current"]))
    output = _ok(_invoke(runner, main, ["db", "upgrade"]))
    head = migrate.current(from_env().database_url)
    assert head is not None
    assert f"database at revision {head}" in output
    assert _ok(_invoke(runner, main, ["db", "current"])).strip() == head
    assert (data_dir / "chopay.db").is_file()
    # Upgrading again changes nothing.
    assert f"database at revision {head}" in _ok(_invoke(runner, main, ["db", "upgrade"]))


def test_keys_generate_creates_missing_keys_only(runner: CliRunner, main: click.Group, data_dir: Path):
    output = _ok(_invoke(runner, main, ["keys", "generate"]))
    signing = data_dir / "keys" / "ledger-signing.key"
    data_keys = data_dir / "keys" / "data-keys.json"
    assert "created" in output
    assert _mode(signing) == 0o600
    assert _mode(data_keys) == 0o600
    assert (data_dir / "keys" / "ledger-verifier.vkey").read_text().strip() in output
    signing_before = signing.read_bytes()
    data_keys.unlink()
    output = _ok(_invoke(runner, main, ["keys", "generate"]))
    assert f"ledger signing key: kept {signing}" in output
    assert f"data keys: created {data_keys}" in output
    assert signing.read_bytes() == signing_before
    assert _mode(data_keys) == 0o600

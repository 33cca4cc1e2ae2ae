"""Job functions used by the job tests; rq imports them by their dotted names.

Each call appends one JSON line to a file, so a test can count executions across the
in-process runner, rq workers and retries. The jobs read the database through the app's
session, which proves they run inside an app context.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import sqlalchemy as sa
from flask import current_app

from chopay.db import get_db
from chopay.users import User

RECORD = "tests.chopay.sample_jobs.record"
FLAKY = "tests.chopay.sample_jobs.flaky"
SWEEP = "tests.chopay.sample_jobs.sweep"
SWEEP_LOG = "sweeps.jsonl"
LISTENED = "tests.chopay.sample_jobs.listened"
LISTEN_LOG = "listened.jsonl"
HOLD = "hold"
FAIL = "fail"


def _count_users() -> int:
    with get_db().session() as s:
        return int(s.scalar(sa.select(sa.func.count()).select_from(User)) or 0)


def _append(path: Path, entry: dict[str, object]) -> None:
    with path.open("a") as fh:
        fh.write(json.dumps(entry) + "\n")


def calls(path: Path) -> list[dict[str, object]]:
    """Return the calls recorded in ``path`` (none when it does not exist)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def record(path: str, label: str) -> None:
    """Record one call with the number of users the job sees in the database."""
    _append(Path(path), {"label": label, "users": _count_users()})


def flaky(path: str, failures: int) -> None:
    """Fail on the first ``failures`` calls, then succeed; every call is recorded."""
    attempt = len(calls(Path(path))) + 1
    _append(Path(path), {"attempt": attempt, "users": _count_users()})
    if attempt <= failures:
        raise RuntimeError(f"deliberate failure on attempt {attempt}")


def sweep() -> None:
    """Record a sweep in the app's data directory (a sweep takes no arguments)."""
    _append(current_app.config["CHOPAY"].data_dir / SWEEP_LOG, {"sweep": True, "users": _count_users()})


def listened() -> None:
    """Record a listener's run in the app's data directory.

    While a file named ``HOLD`` is there, the run waits (a test holds it open); while one named
    ``FAIL`` is there, it fails after it is recorded.
    """
    data_dir = current_app.config["CHOPAY"].data_dir
    _append(data_dir / LISTEN_LOG, {"run": True, "users": _count_users()})
    deadline = time.monotonic() + 30
    while (data_dir / HOLD).exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    if (data_dir / FAIL).exists():
        raise RuntimeError("deliberate failure of a listener run")

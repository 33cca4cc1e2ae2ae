"""Metrics that every worker of one gunicorn server shares (prometheus_client's multiprocess mode).

gunicorn answers each request, ``/metrics`` included, on whichever worker accepts it. Each
worker counting on its own would make every scrape show one worker's share, a different one
each time, and counters would seem to jump back and forth. Before ``chopay serve`` (and
``chopay events``) start gunicorn, :func:`share` points prometheus_client at a directory that
every worker writes its counts to, and ``/metrics`` adds them up (``MultiProcessCollector``).
The counts of a worker that gunicorn replaced stay in the sum, so counters never go back.

This module must not import prometheus_client: it decides how prometheus_client counts, which
prometheus_client reads once, when it is first imported.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import click

ENV = "PROMETHEUS_MULTIPROC_DIR"


def share(directory: Path) -> Path:
    """Make the workers forked from this process count into ``directory``; return the directory used.

    ``directory`` is emptied first: the counts of an earlier run of the server are not this
    run's. An operator who sets ``PROMETHEUS_MULTIPROC_DIR`` chooses the directory, and empties
    it between runs, as prometheus_client asks.
    """
    chosen = os.environ.get(ENV)
    if chosen:
        return Path(chosen)
    if "prometheus_client" in sys.modules:
        raise RuntimeError("prometheus_client was imported before the metrics directory was chosen")
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    os.environ[ENV] = str(directory)
    return directory


def share_or_exit(directory: Path) -> Path:
    """:func:`share`, for a command: a directory it cannot make ends the command with a clear error."""
    try:
        return share(directory)
    except OSError as exc:
        raise click.ClickException(
            f"cannot prepare {directory} for the workers' metrics ({exc.strerror or exc}); make the "
            f"data directory writable, or set {ENV} to a writable directory"
        ) from None


def directory() -> Path | None:
    """Return the directory this process's metrics are shared through, if any."""
    chosen = os.environ.get(ENV)
    return Path(chosen) if chosen else None

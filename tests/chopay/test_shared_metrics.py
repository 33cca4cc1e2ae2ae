"""Choosing the directory through which the workers of one gunicorn server share their metrics."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from chopay import shared_metrics

SHARE = """
import os, sys
from pathlib import Path
from chopay import shared_metrics
used = shared_metrics.share(Path(sys.argv[1]))
import prometheus_client.values as values
print(used, os.environ[shared_metrics.ENV], values.ValueClass.__name__, sorted(os.listdir(used)))
"""


def _share(directory: Path, **env: str) -> list[str]:
    clean = {k: v for k, v in os.environ.items() if k != shared_metrics.ENV}
    done = subprocess.run(
        [sys.executable, "-c", SHARE, str(directory)],
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    return done.stdout.strip().split(maxsplit=3)


def test_a_server_counts_into_a_fresh_directory_that_its_workers_inherit(tmp_path: Path):
    directory = tmp_path / "metrics" / "serve"
    directory.mkdir(parents=True)
    (directory / "counter_12345.db").write_bytes(b"an earlier run's counts")
    used, env, value_class, listing = _share(directory)
    assert used == env == str(directory)
    assert value_class == "MmapedValue"  # prometheus_client counts into files, not in memory
    assert listing == "[]"  # the earlier run's counts are gone


def test_an_operators_directory_is_used_as_it_is(tmp_path: Path):
    chosen = tmp_path / "theirs"
    chosen.mkdir()
    (chosen / "counter_1.db").write_bytes(b"kept")
    used, env, _, listing = _share(tmp_path / "ours", PROMETHEUS_MULTIPROC_DIR=str(chosen))
    assert used == env == str(chosen)
    assert listing == "['counter_1.db']"
    assert not (tmp_path / "ours").exists()


def test_it_is_too_late_once_prometheus_client_is_imported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    import prometheus_client  # noqa: F401  (as in this test process: imported by the app)

    monkeypatch.delenv(shared_metrics.ENV, raising=False)
    with pytest.raises(RuntimeError, match="imported before"):
        shared_metrics.share(tmp_path / "metrics")
    assert shared_metrics.ENV not in os.environ
    assert shared_metrics.directory() is None
    assert not (tmp_path / "metrics").exists()


def test_serve_refuses_clearly_when_it_cannot_make_the_directory(tmp_path: Path):
    data = tmp_path / "var"
    data.mkdir()
    (data / "metrics").write_text("a file where the directory should be")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHOPAY_") and k != shared_metrics.ENV}
    done = subprocess.run(
        [str(Path(sys.executable).parent / "chopay"), "serve", "--bind", "127.0.0.1:0"],
        env={**env, "CHOPAY_DATA_DIR": str(data)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert f"cannot prepare {data / 'metrics' / 'serve'} for the workers' metrics" in done.stderr
    assert "PROMETHEUS_MULTIPROC_DIR" in done.stderr
    assert (data / "metrics").read_text() == "a file where the directory should be"  # nothing lost

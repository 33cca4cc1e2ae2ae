"""Run a module's tests against each of its mutants, in a copy of the project, and report JSON.

The working tree is never written to. The project's files (``git ls-files``, tracked and
untracked but not ignored) are copied to a temporary directory, one copy per job; for each
mutant the module's file in the copy is overwritten and ``pytest -x -q`` runs the module's
tests there, with the copy first on ``PYTHONPATH`` so that every import, subprocesses
included, sees the mutant. Each run gets a deadline; on expiry, on Ctrl-C or on SIGTERM the run's
whole process group is killed and the copies are deleted.

A mutant is *killed* when the tests fail, *timeout* when they do not finish in time (a hang is
noticed too), and *survived* when they pass. Survivors listed in ``mutation.toml`` with the
reason they cannot be observed are *equivalent* and leave the score, which is
``(killed + timeout) / (generated - equivalent)``.

Hypothesis runs with a fixed seed and a fresh example database per run, so a report can be
reproduced. ``CHOPAY_TEST_DATABASE_URL`` and ``CHOPAY_TEST_REDIS_URL`` are removed from the
runs' environment: parallel runs must never share (and wipe) one database.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from queue import Queue
from typing import Any

from tests.mutation.operators import Mutant, apply, generate, unchanged

__all__ = ["Config", "Equivalent", "Outcome", "Sandbox", "load_config", "main", "run_module"]

ROOT = Path(__file__).resolve().parents[2]
CONFIG = Path(__file__).with_name("mutation.toml")
_PRIVATE_ENV = ("CHOPAY_TEST_DATABASE_URL", "CHOPAY_TEST_REDIS_URL")
_SKIP_DIRS = {".git", ".venv", "var", "build", "dist", "__pycache__", "node_modules"}


class MutationError(Exception):
    """The run cannot give a meaningful answer (bad configuration, failing baseline ...)."""


@dataclass(frozen=True)
class Equivalent:
    """A surviving mutant that no test can observe, and why."""

    module: str
    scope: str
    original: str
    mutated: str
    reason: str
    occurrence: int = 0

    @property
    def key(self) -> tuple[str, str, str, int]:
        """Return the identity matched against :attr:`Mutant.key`."""
        return (self.scope, self.original, self.mutated, self.occurrence)


@dataclass(frozen=True)
class Config:
    """The test files of each module, and the known equivalent mutants."""

    tests: dict[str, list[str]]
    equivalents: list[Equivalent] = field(default_factory=list)


def load_config(path: Path = CONFIG) -> Config:
    """Read ``mutation.toml``: a ``[tests]`` table and ``[[equivalent]]`` entries."""
    with path.open("rb") as f:
        data = tomllib.load(f)
    tests = {module: list(files) for module, files in data.get("tests", {}).items()}
    equivalents = []
    for entry in data.get("equivalent", []):
        try:
            equivalents.append(Equivalent(**entry))
        except TypeError as exc:
            raise MutationError(f"{path}: bad [[equivalent]] entry {entry!r}: {exc}") from None
        if not entry.get("reason"):
            raise MutationError(f"{path}: equivalent mutant {entry!r} gives no reason")
    return Config(tests, equivalents)


@dataclass(frozen=True)
class Outcome:
    """What one test run made of one mutant."""

    status: str  # "killed", "survived" or "timeout"
    seconds: float
    returncode: int | None
    detail: str = ""


def project_files(root: Path) -> list[str]:
    """Return the project's files relative to ``root``: what git tracks or would track."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=root,
            capture_output=True,
            check=True,
        ).stdout.decode()
    except (OSError, subprocess.CalledProcessError):
        listed = ""
    files = [name for name in listed.split("\0") if name and (root / name).is_file()]
    if files:
        return files
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in _SKIP_DIRS and not d.startswith(".")]
        base = Path(dirpath).relative_to(root)
        found.extend(str(base / name) for name in filenames if not name.endswith(".pyc"))
    return found


def module_name(path: str) -> str:
    """Return the import name of a module file given relative to the project root."""
    parts = list(Path(path).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _last_failure(log: str) -> str:
    for line in log.splitlines():
        if line.startswith(("FAILED ", "ERROR ")):
            return line
    tail = [line for line in log.splitlines() if line.strip()]
    return tail[-1] if tail else ""


class Sandbox:
    """A copy of the project in a temporary directory, in which one module file is replaced."""

    def __init__(self, root: Path, files: Sequence[str]) -> None:
        self.root = root
        self.path = Path(tempfile.mkdtemp(prefix="chopay-mutation-"))
        self._process: subprocess.Popen[bytes] | None = None
        self._stopped = False
        self._lock = threading.Lock()
        for name in files:
            target = self.path / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(root / name, target)
        env = {k: v for k, v in os.environ.items() if k not in _PRIVATE_ENV}
        env["PYTHONPATH"] = os.pathsep.join([str(self.path), *filter(None, [env.get("PYTHONPATH")])])
        env["HYPOTHESIS_STORAGE_DIRECTORY"] = str(self.path / ".hypothesis")
        self.env = env

    def write(self, module: str, code: str) -> None:
        """Replace ``module`` in the copy, and drop its bytecode so the new text is compiled."""
        target = self.path / module
        target.write_text(code, encoding="utf-8")
        # Bytecode is keyed on the source's mtime and size, which two mutants can share.
        for cached in (target.parent / "__pycache__").glob(f"{target.stem}.*.pyc"):
            cached.unlink(missing_ok=True)

    def imports_from_here(self, module: str) -> bool:
        """Return whether importing ``module`` in a test run loads the copy's file."""
        done = subprocess.run(
            [
                sys.executable,
                "-c",
                f"import importlib; print(importlib.import_module({module_name(module)!r}).__file__)",
            ],
            cwd=self.path,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        loaded = done.stdout.strip()
        return done.returncode == 0 and Path(loaded).resolve() == (self.path / module).resolve()

    def run(self, tests: Sequence[str], timeout: float) -> Outcome:
        """Run ``pytest -x -q`` on ``tests`` in the copy, killing it after ``timeout`` seconds."""
        shutil.rmtree(self.path / ".hypothesis", ignore_errors=True)
        command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider"]
        if importlib.util.find_spec("hypothesis") is not None:
            command.append("--hypothesis-seed=0")
        command.extend(tests)
        log_path = self.path / ".mutation-run.log"
        started = time.monotonic()
        with log_path.open("wb") as log:
            with self._lock:
                if self._stopped:
                    raise MutationError("the run was stopped")
                process = subprocess.Popen(
                    command,
                    cwd=self.path,
                    env=self.env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
                self._process = process
            try:
                returncode: int | None = process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                returncode = None
            finally:
                self.kill()
        seconds = time.monotonic() - started
        text = log_path.read_text(encoding="utf-8", errors="replace")
        if returncode is None:
            return Outcome("timeout", seconds, None, f"no result after {timeout:.0f} s")
        if returncode == 0:
            return Outcome("survived", seconds, 0)
        return Outcome("killed", seconds, returncode, _last_failure(text))

    def kill(self) -> None:
        """Kill the running test process and everything it started (its process group)."""
        with self._lock:
            process, self._process = self._process, None
        if process is None:
            return
        # The group outlives its leader: pool workers and other children are killed with it. An
        # empty group (everything already ended) is the only error, and the goal is reached then.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()

    def stop(self) -> None:
        """Kill the current run and refuse new ones."""
        with self._lock:
            self._stopped = True
        self.kill()

    def close(self) -> None:
        """Stop any run and delete the copy."""
        self.stop()
        shutil.rmtree(self.path, ignore_errors=True)


@dataclass
class _Pool:
    """Sandboxes handed out to one test run at a time."""

    sandboxes: list[Sandbox]
    free: Queue[Sandbox] = field(default_factory=Queue)

    def __post_init__(self) -> None:
        for sandbox in self.sandboxes:
            self.free.put(sandbox)


def _baseline(sandbox: Sandbox, module: str, source: str, tests: Sequence[str]) -> float:
    sandbox.write(module, unchanged(source))
    if not sandbox.imports_from_here(module):
        raise MutationError(f"{module}: a test run would not import the copy's file; check PYTHONPATH")
    outcome = sandbox.run(tests, timeout=3600)
    if outcome.status != "survived":
        raise MutationError(f"{module}: the tests fail without any mutant: {outcome.detail}")
    return outcome.seconds


def run_module(
    module: str,
    tests: Sequence[str],
    equivalents: Sequence[Equivalent],
    *,
    root: Path = ROOT,
    jobs: int = 1,
    timeout_factor: float = 3.0,
    min_timeout: float = 10.0,
    only: Sequence[int] | None = None,
    all_results: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Mutate ``module`` one change at a time, run ``tests`` against each, and return the report."""
    started = time.monotonic()
    source = (root / module).read_text(encoding="utf-8")
    mutants = generate(source)
    if only is not None:
        wanted = set(only)
        mutants = [m for m in mutants if m.index in wanted]
    files = project_files(root)
    if module not in files:
        raise MutationError(f"{module} is not a file of the project at {root}")
    pool = _Pool([Sandbox(root, files) for _ in range(max(1, min(jobs, len(mutants) or 1)))])
    try:
        baseline = _baseline(pool.sandboxes[0], module, source, tests)
        timeout = max(min_timeout, baseline * timeout_factor)
        for sandbox in pool.sandboxes[1:]:
            sandbox.write(module, unchanged(source))

        def run_one(mutant: Mutant) -> Outcome:
            sandbox = pool.free.get()
            try:
                sandbox.write(module, apply(source, mutant))
                outcome = sandbox.run(tests, timeout)
            finally:
                pool.free.put(sandbox)
            if progress and outcome.status != "killed":
                print(f"{module}:{mutant.line}: {outcome.status}: {mutant.mutated}", file=sys.stderr)
            return outcome

        executor = ThreadPoolExecutor(len(pool.sandboxes))
        futures = [executor.submit(run_one, mutant) for mutant in mutants]
        try:
            outcomes = [future.result() for future in futures]
        finally:
            # On Ctrl-C nothing new starts, and what runs is killed instead of awaited.
            for future in futures:
                future.cancel()
            for sandbox in pool.sandboxes:
                sandbox.stop()
            executor.shutdown(wait=True, cancel_futures=True)
    finally:
        for sandbox in pool.sandboxes:
            sandbox.close()
    return _report(module, tests, mutants, outcomes, equivalents, baseline, timeout, started, all_results)


def _report(
    module: str,
    tests: Sequence[str],
    mutants: Sequence[Mutant],
    outcomes: Sequence[Outcome],
    equivalents: Sequence[Equivalent],
    baseline: float,
    timeout: float,
    started: float,
    all_results: bool,
) -> dict[str, Any]:
    listed = {e.key: e for e in equivalents if e.module == module}
    by_key = {m.key: (m, o) for m, o in zip(mutants, outcomes, strict=True)}
    groups: dict[str, list[dict[str, Any]]] = {"killed": [], "timeout": [], "survived": [], "equivalent": []}
    for mutant, outcome in zip(mutants, outcomes, strict=True):
        entry = mutant.to_dict()
        status = outcome.status
        if status == "survived" and mutant.key in listed:
            status = "equivalent"
            entry["reason"] = listed[mutant.key].reason
        if status == "killed":
            entry["killed_by"] = outcome.detail
        groups[status].append(entry)
    stale = []
    for key, equivalent in listed.items():
        found = by_key.get(key)
        if found is None or found[1].status != "survived":
            why = "not generated" if found is None else found[1].status
            stale.append({"scope": equivalent.scope, "original": equivalent.original, "why": why})
    counted = len(mutants) - len(groups["equivalent"])
    detected = len(groups["killed"]) + len(groups["timeout"])
    report: dict[str, Any] = {
        "module": module,
        "tests": list(tests),
        "generated": len(mutants),
        "killed": len(groups["killed"]),
        "timeout": len(groups["timeout"]),
        "survived": len(groups["survived"]),
        "equivalent": len(groups["equivalent"]),
        "score": round(detected / counted, 4) if counted else 1.0,
        "baseline_seconds": round(baseline, 2),
        "timeout_seconds": round(timeout, 2),
        "seconds": round(time.monotonic() - started, 1),
        "survivors": groups["survived"],
        "timeouts": groups["timeout"],
        "equivalents": groups["equivalent"],
        "stale_equivalents": stale,
    }
    if all_results:
        report["killed_mutants"] = groups["killed"]
    return report


def _diff(module: str, source: str, mutant: Mutant) -> Iterator[str]:
    return difflib.unified_diff(
        unchanged(source).splitlines(keepends=True),
        apply(source, mutant).splitlines(keepends=True),
        f"{module} (as written for the tests)",
        f"{module} (mutant {mutant.index})",
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tests.mutation",
        description="Mutate a module one change at a time and run its tests against each mutant; print JSON.",
    )
    parser.add_argument(
        "modules", nargs="*", help="module files relative to the project root, e.g. qr/tlv.py"
    )
    parser.add_argument("--all", action="store_true", help="every module listed in mutation.toml")
    parser.add_argument(
        "--tests", nargs="+", metavar="PATH", help="test files to run (default: mutation.toml)"
    )
    parser.add_argument("-j", "--jobs", type=int, default=1, help="test runs at a time (default 1)")
    parser.add_argument(
        "--timeout-factor", type=float, default=3.0, help="deadline as a multiple of the baseline"
    )
    parser.add_argument("--min-timeout", type=float, default=10.0, help="shortest deadline in seconds")
    parser.add_argument("--mutant", type=int, action="append", metavar="INDEX", help="run only these mutants")
    parser.add_argument(
        "--survivors-of", type=Path, metavar="REPORT", help="run only the mutants that survived in a report"
    )
    parser.add_argument("--list", action="store_true", help="print the mutants without running anything")
    parser.add_argument("--show", type=int, metavar="INDEX", help="print the diff of one mutant")
    parser.add_argument("--all-results", action="store_true", help="list the killed mutants too")
    parser.add_argument("--fail-under", type=float, metavar="SCORE", help="exit 1 if a module scores lower")
    parser.add_argument("--output", type=Path, help="also write the JSON report to this file")
    parser.add_argument("--config", type=Path, default=CONFIG, help=argparse.SUPPRESS)
    return parser


def _survivor_indexes(module: str, report: dict[str, Any] | None) -> list[int]:
    """Return today's indexes of the mutants that survived in an earlier report (matched by key)."""
    if report is None:
        return []
    keys = {(s["scope"], s["original"], s["mutated"], s["occurrence"]) for s in report["survivors"]}
    return [m.index for m in generate((ROOT / module).read_text(encoding="utf-8")) if m.key in keys]


def _on_sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    """Run the mutation check from the command line; see ``--help``."""
    parser = _parser()
    args = parser.parse_args(argv)
    config = load_config(args.config)
    modules = list(config.tests) if args.all else args.modules
    if not modules:
        parser.error("name at least one module, or --all")
    if args.tests and len(modules) != 1:
        parser.error("--tests needs exactly one module")
    for module in modules:
        if not (ROOT / module).is_file():
            parser.error(f"{module}: no such file under {ROOT}")
        if not args.tests and module not in config.tests:
            parser.error(f"{module}: no tests listed in {args.config.name}; pass --tests")

    if args.list or args.show is not None:
        for module in modules:
            source = (ROOT / module).read_text(encoding="utf-8")
            mutants = generate(source)
            if args.show is not None:
                if not 0 <= args.show < len(mutants):
                    parser.error(f"{module} has mutants 0..{len(mutants) - 1}")
                sys.stdout.writelines(_diff(module, source, mutants[args.show]))
            else:
                print(json.dumps({"module": module, "mutants": [m.to_dict() for m in mutants]}, indent=2))
        return 0

    earlier = None
    if args.survivors_of is not None:
        earlier = {
            r["module"]: r for r in json.loads(args.survivors_of.read_text(encoding="utf-8"))["modules"]
        }
    signal.signal(signal.SIGTERM, _on_sigterm)
    reports: list[dict[str, Any]] = []
    interrupted = False
    try:
        for module in modules:
            tests = args.tests or config.tests[module]
            only = args.mutant
            if earlier is not None:
                only = _survivor_indexes(module, earlier.get(module))
            reports.append(
                run_module(
                    module,
                    tests,
                    config.equivalents,
                    jobs=args.jobs,
                    timeout_factor=args.timeout_factor,
                    min_timeout=args.min_timeout,
                    only=only,
                    all_results=args.all_results,
                )
            )
            summary = reports[-1]
            print(
                f"{module}: {summary['generated']} mutants, {summary['killed']} killed, "
                f"{summary['timeout']} timeout, {summary['survived']} survived, "
                f"{summary['equivalent']} equivalent: score {summary['score']:.2%}",
                file=sys.stderr,
            )
    except KeyboardInterrupt:
        interrupted = True
    except MutationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    text = json.dumps({"modules": reports, "interrupted": interrupted}, indent=2, ensure_ascii=False)
    print(text)
    if args.output is not None:
        args.output.write_text(text + "\n", encoding="utf-8")
    if interrupted:
        return 130
    if args.fail_under is not None and any(r["score"] < args.fail_under for r in reports):
        return 1
    return 0

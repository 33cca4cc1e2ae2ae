"""CPU time by process role over a phase of a benchmark, read from ``/proc`` (Linux).

A throughput figure says how fast; this says where the CPU went: the web workers, the job
worker, PostgreSQL, the load generator. On a machine whose cores are all busy, the rate is
bounded by ``cores x 1000 / (CPU ms per request, all processes together)``, so the breakdown
tells which process a change must make cheaper. Elsewhere than Linux the meter reads nothing
and the benchmark prints no breakdown.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path

PROC = Path("/proc")
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

Roles = Callable[[], dict[str, set[int]]]
"""Return, per role, the pids that belong to it now."""


def _stat(pid: int) -> list[str] | None:
    """Return the fields of ``/proc/PID/stat`` after the command name, or None if it is gone."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()


def cpu_ms(pid: int) -> float | None:
    """Return the user and system CPU time of ``pid`` (all its threads) in ms, or None if gone."""
    fields = _stat(pid)
    if fields is None:
        return None
    return (int(fields[11]) + int(fields[12])) * 1000 / _TICKS


def _pids() -> list[int]:
    try:
        return [int(name) for name in os.listdir(PROC) if name.isdigit()]
    except OSError:
        return []


def tree(root: int) -> set[int]:
    """Return ``root`` and every process descended from it."""
    children: dict[int, list[int]] = {}
    for pid in _pids():
        fields = _stat(pid)
        if fields is not None:
            children.setdefault(int(fields[1]), []).append(pid)
    found, todo = set(), [root]
    while todo:
        pid = todo.pop()
        if pid not in found:
            found.add(pid)
            todo.extend(children.get(pid, []))
    return found


def named(*names: str) -> set[int]:
    """Return the processes whose command name (``/proc/PID/comm``) starts with one of ``names``."""
    found = set()
    for pid in _pids():
        try:
            comm = (PROC / str(pid) / "comm").read_text().strip()
        except OSError:
            continue
        if comm.startswith(names):
            found.add(pid)
    return found


class CPUMeter:
    """Measure the CPU that each role's processes use between :meth:`start` and :meth:`stop`.

    A process that appears during the phase counts from its start; one that ends during it is
    lost (the meter reads ``/proc`` only at the two ends).
    """

    def __init__(self, roles: Roles) -> None:
        self.roles = roles
        self._start: dict[int, float] = {}

    def start(self) -> None:
        self._start = self._read(pid for pids in self.roles().values() for pid in pids)

    def stop(self) -> dict[str, float]:
        """Return the CPU ms each role used since :meth:`start` (empty off Linux)."""
        if not PROC.is_dir():
            return {}
        used: dict[str, float] = {}
        for role, pids in self.roles().items():
            now = self._read(pids)
            used[role] = sum(ms - self._start.get(pid, 0.0) for pid, ms in now.items())
        return used

    @staticmethod
    def _read(pids: Iterable[int]) -> dict[int, float]:
        found = {}
        for pid in pids:
            ms = cpu_ms(pid)
            if ms is not None:
                found[pid] = ms
        return found


def per_item(used: dict[str, float], items: int, cpus: int) -> dict[str, float] | None:
    """Return each role's CPU ms per item, their total, and the rate all ``cpus`` could sustain."""
    if not used or items <= 0:
        return None
    out = {role: round(ms / items, 3) for role, ms in used.items()}
    total = sum(used.values()) / items
    out["total"] = round(total, 3)
    out["ceiling_per_s"] = round(cpus * 1000 / total, 1) if total > 0 else 0.0
    return out

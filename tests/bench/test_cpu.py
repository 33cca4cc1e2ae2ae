"""The benchmarks' CPU meter: CPU time per process role, read from /proc."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from bench._cpu import PROC, CPUMeter, cpu_ms, named, per_item, tree

BURN = "import time\nend = time.process_time() + {seconds}\nwhile time.process_time() < end: pass\n"
PARENT = (
    "import subprocess, sys\n"
    "child = subprocess.Popen([sys.executable, '-c', {burn!r}])\n"
    "print(child.pid, flush=True)\n"
    "child.wait()\n"
)


def _burner(seconds: float) -> subprocess.Popen[str]:
    """Start a process whose child burns ``seconds`` of CPU; the parent prints the child's pid."""
    code = PARENT.format(burn=BURN.format(seconds=seconds))
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)


def test_a_tree_holds_the_root_and_its_descendants_and_nothing_else():
    with _burner(0.5) as parent:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        found = tree(parent.pid)
        assert found == {parent.pid, child}
        assert os.getpid() not in found


def test_the_meter_gives_each_role_the_cpu_its_processes_used():
    with _burner(0.6) as parent:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        meter = CPUMeter(lambda: {"burner": tree(parent.pid), "idle": {os.getpid()}})
        meter.start()
        deadline = time.monotonic() + 30
        # Stop while the child still runs (a process that has ended is no longer read).
        while (cpu_ms(child) or 0) < 500 and time.monotonic() < deadline:
            time.sleep(0.02)
        used = meter.stop()
    assert set(used) == {"burner", "idle"}
    assert 300 <= used["burner"] <= 2000
    assert used["idle"] < used["burner"] / 2


def test_a_process_that_is_gone_reads_as_nothing():
    gone = max(int(p) for p in os.listdir(PROC) if p.isdigit()) + 100_000
    assert cpu_ms(gone) is None
    assert tree(gone) == {gone}  # no descendants: nothing has it as parent
    meter = CPUMeter(lambda: {"x": {gone}})
    meter.start()
    assert meter.stop() == {"x": 0.0}


def test_processes_are_found_by_command_name():
    assert os.getpid() in named("python", "pytest")
    assert not named("no-such-command-name")


def test_per_item_figures_and_the_ceiling_they_imply():
    figures = per_item({"web": 2000.0, "postgres": 1000.0}, items=1000, cpus=2)
    assert figures == {"web": 2.0, "postgres": 1.0, "total": 3.0, "ceiling_per_s": 666.7}
    assert per_item({}, items=1000, cpus=2) is None
    assert per_item({"web": 1.0}, items=0, cpus=2) is None

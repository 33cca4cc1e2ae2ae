"""Benchmark the bank simulator's payout throughput through the batch API.

Starts ``chopay fakebank serve`` (gunicorn, gthread) on a free port with a fresh database
and no injected faults or latency, then sends ``--items`` payouts in chunks of
``--chunk`` through chopay's payOS rail (the official SDK, over HTTP), from ``--clients``
processes at once: on the 2-core machine those clients stand in for the ``chopay worker``
processes that share the cores with the simulator during a payout run (they sign, parse
and validate as the workers will). Destination numbers end in 0, so none falls in a
documented failure state: every transfer succeeds and moves money.

Target: at least 1,500 items/s (the payout execution target of the disbursement
benchmark, which this simulator must not be the bottleneck of). Also reports the latency
of one chunk (p50/p95), a single-item payout per second as the baseline the batch API is
compared against, and checks that every reference moved money exactly once. The machine is
shared, so it also reports the simulator's own CPU time per item (from /proc), which load
elsewhere does not change, and the load average during the run.

Prints one JSON object. Run with ``python bench/fakebank.py [--items N] [--chunk N]``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402

from payments.rails.base import Outcome, TransferRequest  # noqa: E402
from payments.rails.fakebank import config as cfg  # noqa: E402
from payments.rails.fakebank.process import Simulator  # noqa: E402
from payments.rails.payos import PayosRail  # noqa: E402

TARGET = 1_500


def cpu_seconds(master: int) -> float:
    """Return the CPU time used so far by the simulator's master and worker processes."""
    pids = [master]
    children = Path(f"/proc/{master}/task/{master}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime + stime, in clock ticks
    return total / os.sysconf("SC_CLK_TCK")


def rail(url: str) -> PayosRail:
    return PayosRail(
        base_url=url,
        client_id=cfg.DEMO_CLIENT_ID,
        api_key=cfg.DEMO_API_KEY,
        checksum_key=cfg.DEMO_CHECKSUM_KEY,
    )


def client(args: tuple[str, int, int, int, str]) -> dict[str, Any]:
    """Send one client's share of the items; return its chunk latencies and outcomes."""
    url, first, count, chunk, prefix = args
    r = rail(url)
    latencies = []
    succeeded = 0
    for start_at in range(first, first + count, chunk):
        batch = [
            TransferRequest(f"{prefix}{i:09d}", 100_000 + i % 1000, "970436", f"9{i:09d}0", "TCXH 2026-12")
            for i in range(start_at, min(start_at + chunk, first + count))
        ]
        began = time.perf_counter()
        results = r.send(batch, chunk_reference=f"C{prefix}{start_at:09d}")
        latencies.append(time.perf_counter() - began)
        succeeded += sum(1 for x in results if x.outcome == Outcome.SUCCEEDED)
    r.close()
    return {"latencies": latencies, "succeeded": succeeded}


def single_rate(url: str, count: int) -> float:
    """Return single-item payouts per second (one at a time), the baseline."""
    r = rail(url)
    began = time.perf_counter()
    for i in range(count):
        r.send(
            [TransferRequest(f"S{i:09d}", 1000, "970436", f"8{i:09d}0", "x")],
            chunk_reference=f"S{i}",
        )
    elapsed = time.perf_counter() - began
    r.close()
    return count / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--chunk", type=int, default=500)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--workers", type=int, default=1, help="simulator processes")
    parser.add_argument("--threads", type=int, default=8)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bank = Simulator.start(
            Path(tmp), "--workers", str(options.workers), "--threads", str(options.threads)
        )
        process, url = bank.process, bank.url
        try:
            share = options.items // options.clients
            jobs = [(url, n * share, share, options.chunk, "B") for n in range(options.clients)]
            cpu_before = cpu_seconds(process.pid)
            began = time.perf_counter()
            with multiprocessing.get_context("spawn").Pool(options.clients) as pool:
                parts = pool.map(client, jobs)
            elapsed = time.perf_counter() - began
            cpu = cpu_seconds(process.pid) - cpu_before
            baseline = single_rate(url, 300)
            with httpx.Client(base_url=url, timeout=60) as admin:
                summary = admin.get("/admin/transfers").json()
        finally:
            bank.stop()
    sent = share * options.clients
    latencies = sorted(x for part in parts for x in part["latencies"])
    rate = sent / elapsed
    results = {
        "benchmark": "fakebank payout throughput (batch API, SDK over HTTP)",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "setup": {
            "items": sent,
            "chunk": options.chunk,
            "clients": options.clients,
            "simulator_workers": options.workers,
            "simulator_threads": options.threads,
        },
        "seconds": round(elapsed, 2),
        "items_per_second": round(rate, 1),
        "simulator_cpu_ms_per_item": round(cpu * 1000 / sent, 3),
        "simulator_items_per_cpu_second": round(sent / cpu, 1) if cpu else None,
        "load_average_1min": round(os.getloadavg()[0], 2),
        "chunk_latency_ms": {
            "p50": round(statistics.median(latencies) * 1000, 1),
            "p95": round(latencies[int(len(latencies) * 0.95) - 1] * 1000, 1),
        },
        "baseline": {"single_item_payouts_per_second": round(baseline, 1)},
        "batch_vs_single": round(rate / baseline, 1),
        "exactly_once": {
            "succeeded": sum(p["succeeded"] for p in parts),
            "references_paid": summary["references"] - 300,
            "references_paid_more_than_once": len(summary["references_paid_more_than_once"]),
        },
        "targets": {"items_per_second >= 1500": rate >= TARGET},
    }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

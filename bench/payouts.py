"""Benchmark: paying a batch end to end on PostgreSQL and Redis, with 2 ``chopay worker`` processes.

The bank simulator runs as its own gunicorn process with no injected faults or latency; the
workers speak to it over HTTP through the official payOS SDK and its batch API (a chunk of
``CHOPAY_PAYOUT_CHUNK`` items per request). Every 1,000th row names a dead account, so the
run also fails items with their reason codes. Phases, each timed:

* ``upload``: the file stored, encrypted, as a new batch (this process);
* ``validate``: the workers validate it (control totals, registry and entitlement checks);
* ``approve``: the approval fixes references and the item digest;
* ``execute``: from the approval's commit to the last item final, on the workers;
* ``checkpoint``: from the last item final to the batch closed with its sealed tree size.

``items_per_second`` is the execution rate; ``peak_worker_rss_mb`` the largest VmHWM of the
workers; ``pgbench_tpcb_tps`` a TPC-B run (8 clients, 20 s) on the same server in the same
run, and ``ratio_to_pgbench`` compares the two (items/s over TPC-B transactions/s: one paid
item costs a fraction of one TPC-B transaction because a chunk is one transaction). Each
item is checked against the simulator's own records: valid ones paid exactly once, dead ones
never. The database is a schema ``bench_payouts`` of the existing database
``CHOPAY_BENCH_DATABASE`` (default the local ``chopay_bench``); Redis is a private
``redis-server`` on a free port.

Usage: ``python bench/payouts.py [--items 100000] [--skip-pgbench]``. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from bench._payouts import PayoutRun, check_exactly_once, fresh_schema  # noqa: E402
from bench._postgres import ensure_database, pgbench  # noqa: E402
from chopay.db import get_db  # noqa: E402
from disbursement.models import Batch, PayoutItem  # noqa: E402
from payments.rails.fakebank.process import Simulator  # noqa: E402

DATABASE = os.environ.get(
    "CHOPAY_BENCH_DATABASE", "postgresql+psycopg://postgres@127.0.0.1:5432/chopay_bench"
)
TARGET_ITEMS_PER_SECOND = 1_500
TARGET_1M_SECONDS = 15 * 60
TARGET_RSS_MB = 300
BAD_EVERY = 1000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def times(run: PayoutRun, batch_id: int) -> dict[str, Any]:
    with get_db(run.app).read_session() as s:
        batch = s.get(Batch, batch_id)
        assert batch is not None
        last_final = s.scalar(
            sa.select(sa.func.max(sa.func.coalesce(PayoutItem.paid_at, PayoutItem.failed_at))).where(
                PayoutItem.batch_id == batch_id
            )
        )
        return {"started_at": batch.started_at, "finished_at": batch.finished_at, "last_final": last_final}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--chunk", type=int, default=500)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--skip-pgbench", action="store_true")
    args = parser.parse_args()
    load = os.getloadavg()
    port = free_port()
    subprocess.run(["redis-server", "--port", str(port), "--save", "", "--daemonize", "yes"], check=True)
    phases: dict[str, float] = {}
    try:
        with tempfile.TemporaryDirectory() as directory:
            tmp = Path(directory)
            with Simulator.start(tmp, "--threads", "8") as bank:
                url = fresh_schema(ensure_database(DATABASE), "bench_payouts")
                run = PayoutRun(
                    tmp,
                    url,
                    f"redis://127.0.0.1:{port}/0",
                    bank.url,
                    {"payout_chunk": args.chunk, "payout_concurrency": 4, "sweep_interval": 30.0},
                )
                try:
                    seed_seconds = run.seed(args.items)
                    for _ in range(args.workers):
                        run.start_worker()
                    clock = time.perf_counter()
                    batch_id = run.upload(args.items, "2026-12", bad_every=BAD_EVERY)
                    phases["upload"] = time.perf_counter() - clock
                    clock = time.perf_counter()
                    assert run.wait(batch_id, {"ready", "invalid"}, timeout=3600) == "ready"
                    phases["validate"] = time.perf_counter() - clock
                    clock = time.perf_counter()
                    run.approve(batch_id)
                    phases["approve"] = time.perf_counter() - clock
                    status = run.wait(batch_id, {"completed", "completed_with_failures"}, timeout=3600)
                    peak = run.peak_rss_mb()
                    stamps = times(run, batch_id)
                    phases["execute"] = (stamps["last_final"] - stamps["started_at"]).total_seconds()
                    phases["checkpoint"] = (stamps["finished_at"] - stamps["last_final"]).total_seconds()
                    checked = check_exactly_once(run, batch_id, bank.db, BAD_EVERY)
                finally:
                    run.close()
        tps = None
        if not args.skip_pgbench:
            dbname = DATABASE.rsplit("/", 1)[1]
            tps = pgbench(dbname, clients=8).tps
            subprocess.run(
                ["pgbench", "-h", "127.0.0.1", "-U", "postgres", "-i", "-I", "d", dbname], capture_output=True
            )
    finally:
        subprocess.run(["redis-cli", "-p", str(port), "shutdown", "nosave"], capture_output=True)
    rate = checked["items"] / phases["execute"]  # the items the batch holds, not the rows asked for
    whole = sum(phases.values())
    targets = {
        "items_per_second>=1500": rate >= TARGET_ITEMS_PER_SECOND,
        "worker_rss_mb<=300": peak <= TARGET_RSS_MB,
    }
    if args.items >= 1_000_000:
        targets["whole_run_seconds<=900"] = whole <= TARGET_1M_SECONDS
    print(
        json.dumps(
            {
                "benchmark": "batch execution (PostgreSQL + Redis, simulator over HTTP, payOS SDK batch API)",
                "items": args.items,
                "chunk": args.chunk,
                "workers": args.workers,
                "status": status,
                "checked": checked,
                "items_per_second": round(rate, 1),
                "phases_seconds": {k: round(v, 2) for k, v in phases.items()},
                "whole_run_seconds": round(whole, 1),
                "seed_seconds": round(seed_seconds, 1),
                "peak_worker_rss_mb": peak,
                "pgbench_tpcb_tps": tps,
                "ratio_to_pgbench": round(rate / tps, 2) if tps else None,
                "cpus": os.cpu_count(),
                "load_average_before": [round(x, 2) for x in load],
                "load_average_after": [round(x, 2) for x in os.getloadavg()],
                "baseline": "issue 11: 100k items >= 1,500 items/s; "
                "1M whole run <= 15 min, worker RSS <= 300 MB",
                "targets_met": targets,
            },
            indent=1,
            default=str,
        )
    )


if __name__ == "__main__":
    main()

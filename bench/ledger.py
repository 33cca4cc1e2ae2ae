"""Ledger benchmark: posting, sequencing, offline verification and proofs.

Measures, in one run, on PostgreSQL (``CHOPAY_BENCH_DATABASE_URL``, default the local server's
``chopay_bench`` database, dropped and re-created):

(a) posting throughput through the batch API, 100,000 two-posting transactions, compared with
    ``pgbench -c 8 -j 2 -T 20`` TPC-B on the same server (the ceiling of one database
    transaction per payment on this machine);
(b) sequencer throughput, leaves per second, over every posted transaction;
(c) offline verification of a 1,000,000-entry export (entries per second);
(d) inclusion-proof latency from the database with 1,000,000 entries in the log (p50, p95).

Prints one JSON object with the figures, the targets and whether each is met.
Usage: python bench/ledger.py [--entries 1000000] [--skip-pgbench]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._postgres import fresh_database, pgbench  # noqa: E402
from bench.ledger_offline import measure_offline_verify  # noqa: E402
from chopay import migrate  # noqa: E402
from chopay.db import Database  # noqa: E402
from payments.ledger import sequencer, services, tree  # noqa: E402
from payments.ledger.domain import Posting, TransactionSpec  # noqa: E402

BATCH = 2000
TARGETS = {
    "posting_tx_per_s": 5000,
    "sequencer_leaves_per_s": 50_000,
    "offline_verify_entries_per_s": 200_000,
    "inclusion_proof_p50_ms": 5.0,
}


def specs(start: int, count: int) -> list[TransactionSpec]:
    """Return payout-like two-posting transactions ``start .. start+count-1``."""
    return [
        TransactionSpec(
            idempotency_key=f"bench:{i}",
            kind="payout",
            memo="monthly allowance",
            postings=[
                Posting(f"beneficiary:{i % 200}", 500_000 + i % 1000),
                Posting("program:BENCH:budget", -(500_000 + i % 1000)),
            ],
            metadata={"payout_ref": f"PO-{i:09d}", "batch": i // 10_000},
        )
        for i in range(start, start + count)
    ]


def post(db: Database, start: int, count: int) -> float:
    """Post ``count`` transactions in batches; return transactions per second."""
    t0 = time.perf_counter()
    for b in range(start, start + count, BATCH):
        with db.unit_of_work() as s:
            services.post_many(s, specs(b, min(BATCH, start + count - b)))
    return count / (time.perf_counter() - t0)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--entries", type=int, default=1_000_000, help="log size for the proof latency")
    parser.add_argument("--posting", type=int, default=100_000, help="transactions for (a)")
    parser.add_argument("--skip-pgbench", action="store_true")
    args = parser.parse_args(argv)

    url = fresh_database("chopay_bench")
    migrate.upgrade(url)
    db = Database(url)
    with db.unit_of_work() as s:
        services.create_account(s, code="program:BENCH:budget", kind="asset")
        for i in range(200):
            services.create_account(s, code=f"beneficiary:{i}", kind="expense")

    results: dict[str, Any] = {"machine": "2 cores", "database": "PostgreSQL (local)"}
    results["posting_tx_per_s"] = round(post(db, 0, args.posting))

    t0 = time.perf_counter()
    with db.unit_of_work() as s:
        added = sequencer.sequence(s)
    results["sequencer_leaves_per_s"] = round(added / (time.perf_counter() - t0))

    if args.entries > args.posting:
        post(db, args.posting, args.entries - args.posting)
        with db.unit_of_work() as s:
            sequencer.sequence(s)
    with db.session() as s:
        size = tree.current_size(s)
        rng = random.Random(7)
        samples = []
        for _ in range(1000):
            index = rng.randrange(size)
            t0 = time.perf_counter()
            proof = tree.inclusion(s, index, size)
            samples.append((time.perf_counter() - t0) * 1000)
            s.rollback()
        assert proof["tree_size"] == size
    results["log_size"] = size
    # pgbench last among the database measures: its load and the checkpoint after it would
    # otherwise still be running while chopay is measured.
    if not args.skip_pgbench:
        pg_db = fresh_database("chopay_pgbench")
        tps = pgbench(pg_db.rsplit("/", 1)[1], clients=8).tps
        results["pgbench_tpcb_tps"] = tps
        results["posting_vs_pgbench"] = round(results["posting_tx_per_s"] / tps, 2) if tps else None
    results["inclusion_proof_p50_ms"] = round(statistics.median(samples), 3)
    results["inclusion_proof_p95_ms"] = round(statistics.quantiles(samples, n=20)[-1], 3)

    offline = measure_offline_verify(1_000_000)
    results["offline_verify_entries_per_s"] = offline["entries_per_second"]
    results["offline_verify"] = offline

    results["targets"] = TARGETS
    results["met"] = {
        "posting_tx_per_s": results["posting_tx_per_s"] >= TARGETS["posting_tx_per_s"],
        "sequencer_leaves_per_s": results["sequencer_leaves_per_s"] >= TARGETS["sequencer_leaves_per_s"],
        "offline_verify_entries_per_s": (results["offline_verify_entries_per_s"] or 0)
        >= TARGETS["offline_verify_entries_per_s"],
        "inclusion_proof_p50_ms": results["inclusion_proof_p50_ms"] <= TARGETS["inclusion_proof_p50_ms"],
    }
    results["baseline"] = "pgbench TPC-B (-c 8 -j 2 -T 20) on the same PostgreSQL server, same run"
    print(json.dumps(results, indent=2))
    db.engine.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

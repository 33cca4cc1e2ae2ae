"""Posting benchmark: one transaction per request, as merchants and payouts post, beside pgbench TPC-B.

Measures, in one run:

In-process, on PostgreSQL (database ``chopay_bench_posting``, dropped and re-created):

* a single post at one thread, each in its own unit of work: p50 and p99 latency, against
  pgbench TPC-B at one client (target: p50 <= 2 x pgbench's mean latency);
* 8 concurrent posters on 10 hot accounts, each post committed before its poster goes on:
  transactions per second, against pgbench TPC-B at 8 clients on scale 10, whose ten branch
  rows are ten hot rows too (target: >= 0.5 x). The posters post as a per-request caller with
  nothing else to write does (``group.post_alone``: concurrent posts share one commit); the
  same posters, each in a unit of work of its own (``services.post``), are measured beside it.

Over HTTP, under a real ``chopay serve`` (journal entries, ``POST /v1/ledger/transactions``):

* on the embedded default (SQLite, in-process jobs) and on PostgreSQL with Redis and one
  ``chopay worker``: 500 sequential entries (target p99 <= 50 ms); 2,000 with 8 concurrent
  clients (target >= 150 entries/s on the embedded default, more on PostgreSQL); and the time
  from the last answer until a signed checkpoint covers every entry (target <= 2 x
  CHOPAY_CHECKPOINT_INTERVAL).

Prints one JSON object with the figures, the baseline, the targets and whether each is met.
Usage: python bench/posting.py [--seconds 15] [--skip-http]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import chopay.models  # noqa: E402, F401  (every table, for the ORM)
from bench._postgres import fresh_database, pgbench  # noqa: E402
from chopay import migrate  # noqa: E402
from chopay.db import Database  # noqa: E402
from payments.ledger import group, services  # noqa: E402
from payments.ledger.domain import Posting, TransactionSpec  # noqa: E402

CHOPAY = Path(sys.executable).parent / "chopay"
HOT = [f"hot:{i}" for i in range(10)]
INTERVAL = 1.0


def _spec(key: str, debit: str, credit: str, amount: int = 1_000) -> TransactionSpec:
    return TransactionSpec(
        key, "journal", "benchmark entry", [Posting(debit, amount), Posting(credit, -amount)]
    )


def _percentile(samples: list[float], q: int) -> float:
    return statistics.quantiles(samples, n=100)[q - 1]


def in_process(seconds: int) -> dict[str, Any]:
    """Measure posting through services.post, each in a unit of work of its own."""
    url = fresh_database("chopay_bench_posting")
    migrate.upgrade(url)
    db = Database(url)
    with db.unit_of_work() as s:
        for code in HOT:
            services.create_account(s, code=code, kind="asset")
    latencies: list[float] = []
    for i in range(2_200):
        started = time.perf_counter()
        with db.unit_of_work() as s:
            services.post(s, _spec(f"single-{i}", HOT[i % 10], HOT[(i + 1) % 10]))
        latencies.append((time.perf_counter() - started) * 1000)
    latencies = latencies[200:]  # after the pool and the prepared statements are warm

    def alone(spec: TransactionSpec) -> None:
        group.post_alone(db, spec)

    def own_unit_of_work(spec: TransactionSpec) -> None:
        with db.unit_of_work() as s:
            services.post(s, spec)

    grouped = _hot_posters(seconds, alone, "hot")
    own = _hot_posters(seconds, own_unit_of_work, "own")
    db.engine.dispose()
    return {
        "single_post_p50_ms": round(statistics.median(latencies), 3),
        "single_post_p99_ms": round(_percentile(latencies, 99), 3),
        "hot_8_threads_tx_per_s": grouped,
        "hot_8_threads_own_unit_of_work_tx_per_s": own,
    }


def _hot_posters(seconds: int, post: Callable[[TransactionSpec], None], prefix: str) -> float:
    """Run 8 threads posting between two random hot accounts; return transactions per second."""
    stop = time.monotonic() + seconds
    counts = [0] * 8

    def poster(t: int) -> None:
        rng = random.Random(t)
        n = 0
        while time.monotonic() < stop:
            debit, credit = rng.sample(HOT, 2)
            post(_spec(f"{prefix}-{t}-{n}", debit, credit))
            n += 1
        counts[t] = n

    threads = [threading.Thread(target=poster, args=(t,)) for t in range(8)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return round(sum(counts) / (time.monotonic() - started), 1)


class Client:
    """A keep-alive HTTP client for one thread."""

    def __init__(self, port: int, token: str) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, bytes]:
        self.conn.request(method, path, body=None if body is None else json.dumps(body), headers=self.headers)
        resp = self.conn.getresponse()
        return resp.status, resp.read()

    def close(self) -> None:
        self.conn.close()


ENTRY = {
    "memo": "benchmark entry",
    "postings": [
        {"account": "bank:settlement", "amount": 1_000},
        {"account": "equity:opening", "amount": -1_000},
    ],
}


@contextmanager
def serving(env: dict[str, str], workdir: Path, worker: bool) -> Iterator[tuple[int, str]]:
    """Run ``chopay init`` and ``chopay serve`` (and ``chopay worker``); yield (port, admin token)."""
    subprocess.run([str(CHOPAY), "init"], env=env, cwd=workdir, check=True, capture_output=True)
    with socket_port() as port:
        procs = [
            subprocess.Popen(
                [str(CHOPAY), "serve", "--bind", f"127.0.0.1:{port}"],
                env=env,
                cwd=workdir,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        ]
        if worker:
            procs.append(
                subprocess.Popen(
                    [str(CHOPAY), "worker"],
                    env=env,
                    cwd=workdir,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,
                )
            )
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                    conn.request("GET", "/readyz")
                    if conn.getresponse().status == 200:
                        break
                except OSError:
                    time.sleep(0.1)
            token = (Path(env["CHOPAY_DATA_DIR"]) / "admin-token").read_text().strip()
            yield port, token
        finally:
            for proc in procs:
                os.killpg(proc.pid, signal.SIGTERM)
            for proc in procs:
                proc.wait(timeout=30)


@contextmanager
def socket_port() -> Iterator[int]:
    """Yield a TCP port that was free a moment ago."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    yield port


def over_http(env: dict[str, str], workdir: Path, worker: bool) -> dict[str, Any]:
    """Measure journal entries over HTTP against a real server."""
    with serving(env, workdir, worker) as (port, token):
        admin = Client(port, token)
        for code, kind in (("bank:settlement", "asset"), ("equity:opening", "equity")):
            status, body = admin.call("POST", "/v1/ledger/accounts", {"code": code, "kind": kind})
            assert status == 201, body
        sequential: list[float] = []
        for _ in range(500):
            started = time.perf_counter()
            status, body = admin.call("POST", "/v1/ledger/transactions", ENTRY)
            assert status == 201, body
            sequential.append((time.perf_counter() - started) * 1000)
        per_client = 250
        errors: list[str] = []

        def client() -> None:
            c = Client(port, token)
            try:
                for _ in range(per_client):
                    status, body = c.call("POST", "/v1/ledger/transactions", ENTRY)
                    if status != 201:
                        errors.append(body.decode(errors="replace"))
            finally:
                c.close()

        threads = [threading.Thread(target=client) for _ in range(8)]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - started
        last_answer = time.monotonic()
        total = 500 + 8 * per_client
        sealed_after = None
        admin.close()
        admin = Client(port, token)  # the idle keep-alive connection was closed by the server
        while time.monotonic() - last_answer < 30:
            status, body = admin.call("GET", "/v1/ledger/checkpoint")
            if status == 200 and int(body.decode().splitlines()[1]) >= total:
                sealed_after = time.monotonic() - last_answer
                break
            time.sleep(0.02)
        admin.close()
    return {
        "sequential_500_p50_ms": round(statistics.median(sequential), 2),
        "sequential_500_p99_ms": round(_percentile(sequential, 99), 2),
        "concurrent_2000_entries_per_s": round(8 * per_client / elapsed, 1),
        "errors": len(errors),
        "sealed_after_last_answer_s": None if sealed_after is None else round(sealed_after, 3),
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=int, default=15, help="duration of each concurrent phase")
    parser.add_argument("--skip-http", action="store_true")
    args = parser.parse_args(argv)
    results: dict[str, Any] = {"machine": f"{os.cpu_count()} cores", "load_average": os.getloadavg()}
    results["in_process_postgresql"] = in_process(args.seconds)
    pg_db = fresh_database("chopay_pgbench")
    one = pgbench(pg_db.rsplit("/", 1)[1], clients=1, seconds=args.seconds)
    eight = pgbench(pg_db.rsplit("/", 1)[1], clients=8, seconds=args.seconds, initialise=False)
    results["pgbench_tpcb"] = {
        "scale": 10,
        "one_client_latency_ms": one.latency_ms,
        "one_client_tps": one.tps,
        "eight_clients_tps": eight.tps,
    }
    base = {k: v for k, v in os.environ.items() if not k.startswith("CHOPAY_")}
    base.update(CHOPAY_CHECKPOINT_INTERVAL=str(INTERVAL), CHOPAY_LOG_LEVEL="WARNING")
    if not args.skip_http:
        with tempfile.TemporaryDirectory(prefix="chopay-bench-") as tmp:
            embedded = dict(base, CHOPAY_DATA_DIR=f"{tmp}/embedded")
            results["http_embedded"] = over_http(embedded, Path(tmp), worker=False)
            url = fresh_database("chopay_bench_http")
            production = dict(
                base,
                CHOPAY_DATA_DIR=f"{tmp}/production",
                CHOPAY_DATABASE_URL=url,
                CHOPAY_REDIS_URL="redis://127.0.0.1:6379/13",
                CHOPAY_WEB_WORKERS="2",
            )
            from redis import Redis

            Redis.from_url(production["CHOPAY_REDIS_URL"]).flushdb()
            results["http_postgresql_redis"] = over_http(production, Path(tmp), worker=True)
    ip = results["in_process_postgresql"]
    targets = {
        "single_post_p50_ms": round(2 * one.latency_ms, 3),
        "hot_8_threads_tx_per_s": round(0.5 * eight.tps, 1),
        "http_sequential_p99_ms": 50,
        "http_embedded_entries_per_s": 150,
        "sealed_within_s": 2 * INTERVAL,
    }
    met = {
        "single_post_p50_ms": ip["single_post_p50_ms"] <= targets["single_post_p50_ms"],
        "hot_8_threads_tx_per_s": ip["hot_8_threads_tx_per_s"] >= targets["hot_8_threads_tx_per_s"],
    }
    if not args.skip_http:
        emb, prod = results["http_embedded"], results["http_postgresql_redis"]
        met["http_sequential_p99_ms"] = max(emb["sequential_500_p99_ms"], prod["sequential_500_p99_ms"]) <= 50
        met["http_embedded_entries_per_s"] = emb["concurrent_2000_entries_per_s"] >= 150
        met["http_postgresql_more_than_embedded"] = (
            prod["concurrent_2000_entries_per_s"] > emb["concurrent_2000_entries_per_s"]
        )
        met["sealed_within_s"] = all(
            r["sealed_after_last_answer_s"] is not None and r["sealed_after_last_answer_s"] <= 2 * INTERVAL
            for r in (emb, prod)
        )
    results["baseline"] = "pgbench TPC-B, scale 10, on the same PostgreSQL server, in the same run"
    results["targets"] = targets
    results["met"] = met
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

"""Bank-notification intake benchmark: signed notifications over HTTP, beside a bare Flask no-op.

Setup, as the README's production layout: PostgreSQL (database ``chopay_bench_intake``,
dropped and re-created) and Redis; ``chopay serve`` with the documented production settings
(gunicorn gthread, CHOPAY_WEB_WORKERS one per core, CHOPAY_WEB_THREADS=16 behind a buffering
proxy; ``--workers`` and ``--threads`` try others), one ``chopay worker`` (the ledger
sequencer) and ``chopay events`` (gunicorn gevent) for the live streams, all on this machine.
The load generator is one asyncio process with ``--connections`` keep-alive connections (32),
each sending its next request when the previous answer has arrived; latency is measured from
send to the last byte of the answer.

Measures, in one run:

* intake: ``--count`` (20,000) chopay-format notifications, each signed (HMAC-SHA256 of
  ``t.body``), each a new bank transaction paying one of ``--merchants`` vendors (static QR):
  notifications per second and p50/p99 (targets: >= 1,000/s, p99 <= 100 ms); afterwards the
  database holds exactly one payment and one ledger transaction per notification;
* baseline: a bare Flask app whose POST reads the body and answers ``{"success": true}``,
  under the same gunicorn settings, with the same load: the intake's rate over it (>= 0.35);
* streams: ``--probe`` notifications with no live stream open, then with ``--streams`` (500)
  SSE streams open on ``chopay events`` and receiving their merchants' payments: the API's p99
  with the streams over its p99 without (target <= 2).
* CPU: during the intake and the baseline, the CPU ms per request of each process role (web
  workers, job worker, events, PostgreSQL, Redis, the load generator), read from ``/proc``,
  and ``ceiling_per_s``, the rate the machine's cores could sustain at that cost
  (``bench/_cpu.py``; absent off Linux).

Prints one JSON object with the figures, the targets and whether each is met.
Usage: python bench/intake.py [--count 20000] [--probe 5000] [--streams 500]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import chopay.models  # noqa: E402, F401  (every table, for the ORM)
from bench._cpu import CPUMeter, named, per_item, tree  # noqa: E402
from bench._postgres import fresh_database  # noqa: E402
from chopay.crypto import DATA_KEYS_FILE, DataKeys  # noqa: E402
from chopay.db import Database  # noqa: E402
from chopay.users import create_user  # noqa: E402
from payments.rails import webhooks as wh  # noqa: E402

CHOPAY = Path(sys.executable).parent / "chopay"
GUNICORN = Path(sys.executable).parent / "gunicorn"
SECRET = "whsec_bench_intake_secret_0001"
BIN = "970436"


def _percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q / 100))]


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def processes(*commands: tuple[list[str], dict[str, str]]) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Start each command in its own session; stop them all afterwards."""
    procs = [
        subprocess.Popen(
            cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        for cmd, env in commands
    ]
    try:
        yield procs
    finally:
        for proc in procs:
            os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            proc.wait(timeout=30)


def wait_ready(port: int, path: str = "/readyz", timeout: float = 60) -> None:
    import http.client

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", path)
            if conn.getresponse().status < 500:
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing answered on port {port}")


def request_bytes(path: str, body: bytes, headers: dict[str, str]) -> bytes:
    head = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {len(body)}"]
    head += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def notifications(start: int, count: int, accounts: list[str]) -> list[Any]:
    """Return ``count`` chopay-format notifications, each a new transaction, signed when sent."""
    now = dt.datetime.now(wh.VIETNAM).replace(microsecond=0)
    out = []
    for i in range(start, start + count):
        body = wh.ChopayNotification(
            bank_txn_id=f"FTBENCH{i:09d}",
            bin=BIN,
            account_number=accounts[i % len(accounts)],
            amount=10_000 + i % 90_000,
            description="thanh toan mua hang",
            occurred_at=now,
            payer_name="NGUYEN VAN KHACH TEST",
        ).to_json()
        out.append(_Signed("/v1/bank-notifications", body))
    return out


class _Signed:
    """A notification signed at the moment it is sent, as a bank signs it (the window is 300 s)."""

    def __init__(self, path: str, body: bytes) -> None:
        self.path = path
        self.body = body

    def __bytes__(self) -> bytes:
        return request_bytes(self.path, self.body, wh.chopay_headers("bench", self.body, SECRET))


async def _read_answer(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if length:
        await reader.readexactly(length)
    return status


async def _load(
    port: int, requests: list[Any], connections: int
) -> tuple[float, list[float], dict[int, int]]:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    queue = iter(requests)

    async def connection() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for raw in queue:
                started = time.perf_counter()
                writer.write(bytes(raw))
                status = await _read_answer(reader)
                latencies.append((time.perf_counter() - started) * 1000)
                statuses[status] = statuses.get(status, 0) + 1
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(connections)))
    return time.perf_counter() - started, latencies, statuses


def load(port: int, requests: list[Any], connections: int) -> dict[str, Any]:
    """Send ``requests`` over ``connections`` keep-alive connections; return rate and latency."""
    elapsed, latencies, statuses = asyncio.run(_load(port, requests, connections))
    return {
        "requests": len(requests),
        "per_s": round(len(requests) / elapsed, 1),
        "p50_ms": round(statistics.median(latencies), 2),
        "p99_ms": round(_percentile(latencies, 99), 2),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
    }


async def _streams(
    port: int, paths: list[tuple[str, str]], ready: asyncio.Event, stop: asyncio.Event
) -> dict[str, int]:
    counts = {"opened": 0, "refused": 0, "events": 0}

    async def one(path: str, token: str) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
            "Accept: text/event-stream\r\n\r\n".encode()
        )
        head = await reader.readuntil(b"\r\n\r\n")
        if b" 200 " not in head.split(b"\r\n")[0]:
            counts["refused"] += 1
            writer.close()
            return
        counts["opened"] += 1
        try:
            while not stop.is_set():
                try:
                    chunk = await asyncio.wait_for(reader.read(65536), 0.5)
                except TimeoutError:
                    continue
                if not chunk:
                    break
                counts["events"] += chunk.count(b"event: payment.received")
        finally:
            writer.close()

    tasks = [asyncio.create_task(one(p, t)) for p, t in paths]
    while counts["opened"] + counts["refused"] < len(paths):
        await asyncio.sleep(0.05)
        if all(t.done() for t in tasks):
            break
    ready.set()
    await stop.wait()
    await asyncio.gather(*tasks, return_exceptions=True)
    return counts


def with_streams(
    api_port: int, events_port: int, paths: list[tuple[str, str]], requests: list[Any], connections: int
) -> tuple[dict[str, Any], dict[str, int]]:
    """Run ``requests`` against the API while ``paths`` are open as SSE streams."""

    async def run() -> tuple[dict[str, Any], dict[str, int]]:
        ready, stop = asyncio.Event(), asyncio.Event()
        streams = asyncio.create_task(_streams(events_port, paths, ready, stop))
        await ready.wait()
        await asyncio.sleep(1.0)  # let the streams settle, as phones idle between payments
        elapsed, latencies, statuses = await _load(api_port, requests, connections)
        await asyncio.sleep(1.0)  # the last events reach their streams
        stop.set()
        counts = await streams
        figures = {
            "requests": len(requests),
            "per_s": round(len(requests) / elapsed, 1),
            "p50_ms": round(statistics.median(latencies), 2),
            "p99_ms": round(_percentile(latencies, 99), 2),
            "statuses": {str(k): v for k, v in sorted(statuses.items())},
        }
        return figures, counts

    return asyncio.run(run())


def seed(url: str, keys_dir: Path, merchants: int) -> tuple[list[str], list[tuple[str, str]]]:
    """Register ``merchants`` vendors with a merchant token each; return accounts and (public id, token)."""
    from merchants.services import registry

    keys = DataKeys.load(keys_dir / DATA_KEYS_FILE)
    database = Database(url)
    accounts: list[str] = []
    vendors: list[tuple[str, str]] = []
    with database.unit_of_work() as s:
        for n in range(merchants):
            account = f"{8_000_000_000 + n}"
            m = registry.create(
                s,
                keys,
                {
                    "display_name": f"Sạp hàng Thử {n}",
                    "market_code": "CHO-BENCH",
                    "market_name": "Chợ Thử",
                    "stall": f"B-{n:04d}",
                    "ward": "Phường Thử",
                    "province": "Đà Nẵng",
                    "bin": BIN,
                    "account_number": account,
                    "account_holder": f"NGUYEN VAN THU {n}",
                },
            )
            token = create_user(s, name=f"Bench vendor {n}", role="merchant", merchant_id=m.id).token
            accounts.append(account)
            vendors.append((m.public_id, token))
    database.engine.dispose()
    return accounts, vendors


def count_rows(url: str) -> dict[str, int]:
    import sqlalchemy as sa

    database = Database(url)
    with database.engine.connect() as conn:
        found = {
            table: int(conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())
            for table in ("bank_notifications", "payments")
        }
        found["ledger_payment_transactions"] = int(
            conn.execute(
                sa.text("SELECT count(*) FROM ledger_transactions WHERE kind = 'merchant.payment'")
            ).scalar_one()
        )
    database.engine.dispose()
    return found


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--probe", type=int, default=5_000)
    parser.add_argument("--streams", type=int, default=500)
    parser.add_argument("--merchants", type=int, default=200)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, help="CHOPAY_WEB_WORKERS (one per core)"
    )
    parser.add_argument("--threads", type=int, default=16, help="CHOPAY_WEB_THREADS of the API workers")
    parser.add_argument(
        "--redis-url", default=os.environ.get("CHOPAY_BENCH_REDIS_URL", "redis://127.0.0.1:6379/6")
    )
    args = parser.parse_args(argv)

    from redis import Redis

    url = fresh_database("chopay_bench_intake")
    Redis.from_url(args.redis_url).flushdb()
    with tempfile.TemporaryDirectory(prefix="chopay-bench-intake-") as tmp:
        api_port, events_port, noop_port = _free_port(), _free_port(), _free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("CHOPAY_")}
        env.update(
            CHOPAY_DATA_DIR=tmp,
            CHOPAY_DATABASE_URL=url,
            CHOPAY_REDIS_URL=args.redis_url,
            CHOPAY_WEB_WORKERS=str(args.workers),
            CHOPAY_WEB_THREADS=str(args.threads),
            CHOPAY_LOG_LEVEL="WARNING",
            CHOPAY_BANK_CONNECTORS=f"bench=chopay:{SECRET}",
            CHOPAY_BIND=f"127.0.0.1:{api_port}",
            CHOPAY_EVENTS_BIND=f"127.0.0.1:{events_port}",
        )
        subprocess.run([str(CHOPAY), "init"], env=env, check=True, capture_output=True)
        accounts, vendors = seed(url, Path(tmp) / "keys", args.merchants)
        intake_requests = notifications(0, args.count, accounts)
        noop_requests = [_Signed("/noop", r.body) for r in intake_requests]

        # The ceiling: a bare Flask app under the same gunicorn settings, alone on the machine.
        noop_env = dict(env, CHOPAY_BIND=f"127.0.0.1:{noop_port}")
        with processes(
            ([str(GUNICORN), "--config", "python:chopay.gunicorn_conf", "bench._noop:app"], noop_env)
        ) as (noop_server,):
            wait_ready(noop_port, "/noop")
            load(noop_port, noop_requests[:1000], args.connections)  # warm up
            meter = CPUMeter(lambda: {"web": tree(noop_server.pid), "load": {os.getpid()}})
            meter.start()
            noop = load(noop_port, noop_requests, args.connections)
            noop_cpu = meter.stop()

        serve = ([str(CHOPAY), "serve"], env)
        worker = ([str(CHOPAY), "worker"], env)
        events = ([str(CHOPAY), "events"], env)
        with processes(serve, worker, events) as (serving, working, streaming):
            wait_ready(api_port)
            wait_ready(events_port)
            meter = CPUMeter(
                lambda: {
                    "web": tree(serving.pid),
                    "worker": tree(working.pid),
                    "events": tree(streaming.pid),
                    "postgres": named("postgres"),
                    "redis": named("redis-server"),
                    "load": {os.getpid()},
                }
            )
            meter.start()
            intake = load(api_port, intake_requests, args.connections)
            intake_cpu = meter.stop()
            probe_none = load(api_port, notifications(args.count, args.probe, accounts), args.connections)
            paths = [
                (f"/v1/merchants/{vendors[i % len(vendors)][0]}/events", vendors[i % len(vendors)][1])
                for i in range(args.streams)
            ]
            probe_streams, stream_counts = with_streams(
                api_port,
                events_port,
                paths,
                notifications(args.count + args.probe, args.probe, accounts),
                args.connections,
            )
        rows = count_rows(url)

    total = args.count + 2 * args.probe
    ratio = intake["per_s"] / noop["per_s"] if noop["per_s"] else 0.0
    p99_ratio = probe_streams["p99_ms"] / probe_none["p99_ms"] if probe_none["p99_ms"] else 0.0
    cpus = os.cpu_count() or 1
    result = {
        "setup": {
            "cpus": cpus,
            "web_workers": args.workers,
            "web_threads": args.threads,
            "connections": args.connections,
            "merchants": args.merchants,
            "database": "postgresql",
            "redis": True,
        },
        "intake": intake,
        "noop_flask": noop,
        "ratio_to_noop": round(ratio, 3),
        # Where the CPU went, per request, and the rate that this machine's cores could sustain
        # if every one of them did nothing else (cores x 1000 / total): the intake's own
        # ceiling, whatever the concurrency.
        "cpu_ms_per_notification": per_item(intake_cpu, args.count, cpus),
        "noop_cpu_ms_per_request": per_item(noop_cpu, len(noop_requests), cpus),
        "api_without_streams": probe_none,
        "api_with_streams": probe_streams,
        "streams": stream_counts,
        "p99_ratio_streams_to_none": round(p99_ratio, 2),
        "rows": rows,
        "targets": {
            "intake_per_s >= 1000": intake["per_s"] >= 1000,
            "intake_p99_ms <= 100": intake["p99_ms"] <= 100,
            "ratio_to_noop >= 0.35": ratio >= 0.35,
            "p99_ratio_streams_to_none <= 2": 0 < p99_ratio <= 2,
            "all streams opened": stream_counts["opened"] == args.streams,
            "one payment and one ledger transaction per notification": rows
            == {"bank_notifications": total, "payments": total, "ledger_payment_transactions": total},
        },
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

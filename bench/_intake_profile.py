"""Profile the chopay-format intake in process: where a notification's CPU goes, statement by statement.

Flask's test client against PostgreSQL (``chopay_bench_intake``, dropped and re-created) and
Redis (``CHOPAY_BENCH_REDIS_URL``, db 6 by default), the same seed as ``bench/intake.py``.
Prints the CPU per notification (profiled and not), the Python function calls per
notification (the same from run to run, unlike times on a shared machine), the statements
sent to PostgreSQL, and the CPU of a bare Flask no-op in the same run; writes the cProfile
statistics (CPU time) to ``--out``.

Usage: python bench/_intake_profile.py [--count 2000] [--out /tmp/intake.pstats]
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import bench.intake as bi  # noqa: E402
from bench._postgres import fresh_database  # noqa: E402


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--out", default=str(Path(tempfile.gettempdir()) / "intake.pstats"))
    parser.add_argument(
        "--redis-url", default=os.environ.get("CHOPAY_BENCH_REDIS_URL", "redis://127.0.0.1:6379/6")
    )
    args = parser.parse_args(argv)
    import psycopg
    from redis import Redis

    Redis.from_url(args.redis_url).flushdb()
    tmp = tempfile.mkdtemp(prefix="chopay-intake-profile-")
    url = fresh_database("chopay_bench_intake")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHOPAY_")}
    env.update(
        CHOPAY_DATA_DIR=tmp,
        CHOPAY_DATABASE_URL=url,
        CHOPAY_REDIS_URL=args.redis_url,
        CHOPAY_LOG_LEVEL="WARNING",
        CHOPAY_BANK_CONNECTORS=f"bench=chopay:{bi.SECRET}",
    )
    subprocess.run([str(bi.CHOPAY), "init"], env=env, check=True, capture_output=True)
    accounts, _ = bi.seed(url, Path(tmp) / "keys", 200)
    os.environ.update({k: v for k, v in env.items() if k.startswith("CHOPAY_")})
    from bench._noop import app as noop_app
    from chopay import create_app
    from payments.rails import webhooks as wh

    client = create_app().test_client()
    n = args.count
    requests = bi.notifications(0, 200 + 2 * n, accounts)
    signed = [(r, wh.chopay_headers("bench", r.body, bi.SECRET)) for r in requests]
    for r, h in signed[:200]:  # warm up: every merchant's ledger accounts exist afterwards
        assert client.post(r.path, data=r.body, headers=h).status_code == 201

    sent: list[str] = []
    execute = psycopg.Cursor.execute

    def counted(self: Any, query: Any, params: Any = None, **kw: Any) -> Any:
        sent.append(" ".join(str(query).split()[:3])[:50])
        return execute(self, query, params, **kw)

    psycopg.Cursor.execute = counted  # type: ignore[method-assign]
    profile = cProfile.Profile(time.process_time)
    cpu = time.process_time()
    profile.enable()
    for r, h in signed[200 : 200 + n]:
        client.post(r.path, data=r.body, headers=h)
    profile.disable()
    profiled = time.process_time() - cpu
    psycopg.Cursor.execute = execute  # type: ignore[method-assign]
    cpu = time.process_time()
    for r, h in signed[200 + n :]:
        client.post(r.path, data=r.body, headers=h)
    plain = time.process_time() - cpu
    noop = noop_app.test_client()
    cpu = time.process_time()
    for r, h in signed[200 + n :]:
        noop.post("/noop", data=r.body, headers=h)
    bare = time.process_time() - cpu

    stats = pstats.Stats(profile)
    stats.dump_stats(args.out)
    print(f"CPU per notification: {plain / n * 1000:.3f} ms ({profiled / n * 1000:.3f} ms profiled)")
    print(f"Python function calls per notification: {stats.total_calls / n:.0f}")  # type: ignore[attr-defined]
    print(f"bare Flask no-op, same run: {bare / n * 1000:.3f} ms per request ({plain / bare:.1f}x)")
    print(f"statements per notification: {len(sent) / n:.2f} (plus COMMIT)")
    for text, count in Counter(sent).most_common():
        print(f"  {count / n:5.2f}  {text}")
    print(f"profile: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

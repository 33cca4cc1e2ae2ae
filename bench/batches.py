"""Benchmark: validation of payout batches on PostgreSQL, time and peak memory.

Targets (issue 10): a 100,000-row batch against 100,000 beneficiaries validated in <= 20 s,
and a 1,000,000-row batch validated with a peak RSS <= 300 MB. The time is split into reading
the file (``totals``: the control-total pass; ``parse``: the row pass), the checks against the
database (``checks``: registry and entitlement lookups, duplicate detection) and the writes
(``writes``: COPY of items and errors; ``commit``).

Each validation runs in a fresh child process, so that its peak RSS is the validation's own,
not the seeding's. It needs the local PostgreSQL server: it drops and re-creates the database
``chopay_bench_batches``. Usage::

    python bench/batches.py                  # 100k and 1M
    python bench/batches.py --sizes 100000   # only 100k

It prints one JSON object.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from chopay import create_app, migrate  # noqa: E402
from chopay.cli.keys import ensure_keys  # noqa: E402
from chopay.config import from_env  # noqa: E402
from chopay.crypto import data_keys  # noqa: E402
from chopay.db import copy_rows, get_db, make_engine  # noqa: E402
from chopay.users import create_user  # noqa: E402
from disbursement import domain  # noqa: E402
from disbursement.models import Beneficiary, Enrolment  # noqa: E402
from disbursement.services import batches, programs, registry  # noqa: E402

SERVER = os.environ.get("CHOPAY_BENCH_SERVER", "postgresql+psycopg://postgres@127.0.0.1:5432")
DATABASE = "chopay_bench_batches"
TARGET_SECONDS_100K = 20.0
TARGET_RSS_MB_1M = 300.0
BIN = "970436"


def _settings(keys_dir: Path) -> Any:
    return from_env(
        {},
        database_url=f"{SERVER}/{DATABASE}",
        keys_dir=keys_dir,
        data_dir=keys_dir.parent,
        log_level="WARNING",
        inline_jobs=True,
    )


_OTHER_PROVINCES = sorted(set(domain.PROVINCES) - {"049"})


def national_id(serial: int) -> str:
    """Return a valid fake CCCD for serial ``serial`` (born 1950-1989), unique per serial.

    The last six digits hold ``serial`` modulo a million; serials from 1,000,000 on move to
    another province code, so that every serial keeps a 12-digit number of its own.
    """
    year = 1950 + serial % 40
    block, number = divmod(serial, 1_000_000)
    province = "049" if block == 0 else _OTHER_PROVINCES[block - 1]
    return f"{province}{domain.century_digit(year, 'male')}{year % 100:02d}{number:06d}"


def reset_database() -> None:
    engine = make_engine(f"{SERVER}/postgres", isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)"))
        conn.execute(sa.text(f"CREATE DATABASE {DATABASE}"))
    engine.dispose()
    migrate.upgrade(f"{SERVER}/{DATABASE}")


def seed(app: Any, count: int) -> tuple[int, float]:
    """Create program BENCH, fund it, register and enrol ``count`` beneficiaries; return the officer id."""
    started = time.perf_counter()
    keys = data_keys(app)
    with app.app_context(), get_db(app).unit_of_work() as s:
        officer = create_user(s, name="Bench officer", role="officer").user.id
        program = programs.create_program(
            s,
            code="BENCH",
            name="Bench program",
            legal_basis="bench",
            monthly_amount=500_000,
            cap=1_000_000,
            source_bin=BIN,
            source_account="0011000000001",
            created_by=officer,
        )
        programs.fund(s, "BENCH", amount=10**13 - 1, reference="bench", created_by=officer)
        program_id = program.id
    now = dt.datetime.now(dt.UTC)
    columns = None
    for start in range(0, count, 50_000):
        with app.app_context(), get_db(app).unit_of_work() as s:
            rows = []
            for serial in range(start + 1, min(count, start + 50_000) + 1):
                clean = {
                    "national_id": national_id(serial),
                    "full_name": f"Nguyễn Văn Test {serial}",
                    "date_of_birth": dt.date(1950 + serial % 40, 1, 1),
                    "gender": "male",
                    "ward": f"Phường {serial % 20}",
                    "province": "Quảng Nam",
                    "phone": None,
                    "bin": BIN,
                    "account_number": f"9{serial:011d}",
                    "status": "active",
                }
                row = registry._columns(keys, clean)
                row.update(id=serial, version=1, created_at=now, updated_at=now, created_by=officer)
                columns = columns or tuple(row)
                rows.append(tuple(row[c] for c in columns))
            assert columns is not None
            with copy_rows(s, Beneficiary, columns) as write:
                for r in rows:
                    write(r)
            enrol_columns = (
                "program_id",
                "beneficiary_id",
                "monthly_amount",
                "enrolled_from",
                "created_at",
                "updated_at",
            )
            with copy_rows(s, Enrolment, enrol_columns) as write:
                for serial in range(start + 1, min(count, start + 50_000) + 1):
                    write((program_id, serial, 500_000, "2026-01", now, now))
    with app.app_context(), get_db(app).unit_of_work() as s:
        s.execute(sa.text("SELECT setval('beneficiaries_id_seq', :n)"), {"n": count})
        s.execute(sa.text("ANALYZE"))
    return officer, time.perf_counter() - started


def write_file(path: Path, rows: int) -> int:
    """Write a batch CSV of ``rows`` rows (every 1000th with a name that differs); return its total."""
    total = 0
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["national_id", "full_name", "amount"])
        for serial in range(1, rows + 1):
            name = f"Nguyễn Văn Test {serial}" if serial % 1000 else "Tran Thi Other"
            writer.writerow([national_id(serial), name, 500_000])
            total += 500_000
    return total


def upload(app: Any, officer: int, path: Path, rows: int, total: int, period: str) -> int:
    with app.app_context(), get_db(app).unit_of_work() as s, path.open("rb") as fh:
        batch = batches.create(
            s,
            data_keys(app),
            program="BENCH",
            period=period,
            declared_count=rows,
            declared_total=total,
            created_by=officer,
            stream=fh,
            filename=path.name,
        )
        return batch.id


def validate_child(keys_dir: str, batch_id: int) -> None:
    """Run one validation in this (fresh) process and print its figures."""
    from disbursement import jobs as disbursement_jobs
    from disbursement.models import Batch

    app = create_app(_settings(Path(keys_dir)))
    phases: dict[str, float] = {}
    started = time.perf_counter()
    with app.app_context():
        disbursement_jobs.validate_batch(batch_id, phases=phases)
    seconds = time.perf_counter() - started
    with app.app_context(), get_db(app).read_session() as s:
        batch = s.get(Batch, batch_id)
        assert batch is not None
        outcome = {"status": batch.status, "rows_valid": batch.rows_valid, "rows_invalid": batch.rows_invalid}
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "seconds": round(seconds, 2),
                "peak_rss_mb": round(peak, 1),
                "phases": {k: round(v, 2) for k, v in phases.items()},
                **outcome,
            }
        )
    )


def run(
    size: int, registry_size: int, app: Any, officer: int, keys_dir: Path, tmp: Path, period: str
) -> dict[str, Any]:
    path = tmp / f"batch-{size}.csv"
    total = write_file(path, size)
    started = time.perf_counter()
    batch_id = upload(app, officer, path, size, total, period)
    upload_seconds = time.perf_counter() - started
    child = subprocess.run(
        [sys.executable, __file__, "--child", str(keys_dir), str(batch_id)],
        check=True,
        capture_output=True,
        text=True,
    )
    figures = json.loads(child.stdout.strip().splitlines()[-1])
    expected_invalid = size // 1000
    assert figures["status"] == "ready", figures
    assert figures["rows_invalid"] == expected_invalid, figures
    assert figures["rows_valid"] == size - expected_invalid, figures
    return {
        "rows": size,
        "registry": registry_size,
        "file_mb": round(path.stat().st_size / 2**20, 1),
        "upload_seconds": round(upload_seconds, 2),
        **figures,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--child", nargs=2, metavar=("KEYS_DIR", "BATCH_ID"))
    args = parser.parse_args()
    if args.child:
        validate_child(args.child[0], int(args.child[1]))
        return
    sizes = [int(x) for x in args.sizes.split(",")]
    load = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        keys_dir = tmp / "keys"
        settings = _settings(keys_dir)
        ensure_keys(settings)
        reset_database()
        app = create_app(settings)
        results = []
        seeded = 0
        officer = 0
        for n, size in enumerate(sizes):
            if size > seeded:
                reset_database() if seeded else None
                officer, seed_seconds = seed(app, size)
                seeded = size
            results.append(
                {
                    **run(size, seeded, app, officer, keys_dir, tmp, f"2026-{n + 1:02d}"),
                    "seed_seconds": round(seed_seconds, 1),
                }
            )
        get_db(app).engine.dispose()
    targets = {}
    for r in results:
        if r["rows"] == 100_000:
            targets["100k_seconds<=20"] = r["seconds"] <= TARGET_SECONDS_100K
        if r["rows"] == 1_000_000:
            targets["1M_peak_rss_mb<=300"] = r["peak_rss_mb"] <= TARGET_RSS_MB_1M
    print(
        json.dumps(
            {
                "benchmark": "batch validation (PostgreSQL)",
                "load_average_before": [round(x, 2) for x in load],
                "load_average_after": [round(x, 2) for x in os.getloadavg()],
                "cpus": os.cpu_count(),
                "results": results,
                "baseline": "targets of issue 10: 100k rows <= 20 s; 1M rows peak RSS <= 300 MB",
                "targets_met": targets,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()

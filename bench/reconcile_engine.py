"""Benchmark the pure reconciliation core: statement parsing and matching, no database.

For each size (100k, 300k and 1M statement lines against as many ledger items) a fresh
process loads the ledger items by column (``LedgerItems.append``, as the service's ledger
load will) while writing a bank-simulator CSV statement of payouts to a temporary file, with
planted discrepancies of every kind (0.3% missing in bank, 0.1% each amount mismatches,
duplicates, returns, money the ledger lacks, and references mistyped so only the tolerant
rule finds them), then measures wall and CPU seconds of:

* ``parse``: reading and validating the CSV (streaming, ``read_csv``);
* ``match``: ``reconcile`` with the balance check;
* ``write_rows``: iterating ``outcomes()``, what the service's report writer will stream;
* ``match_objects``: iterating ``matches()``, the same with a dataclass per match.

It prints one JSON object: the times per phase, lines per CPU second, peak RSS per size (how
memory grows with statement size), a camt.053 and an MT940 parse at 100k lines, and whether
the targets hold: parse + match + write_rows of 1M lines within 30 CPU seconds (half of the
60 s the whole pipeline with database load and write has; CPU seconds because the machine
is shared) and peak RSS within 700 MB (of its 1 GB).

    python bench/reconcile_engine.py [--sizes 100000,300000,1000000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from payments.reconciliation.domain import Category, LedgerKind  # noqa: E402
from payments.reconciliation.items import LedgerItems  # noqa: E402
from payments.reconciliation.matching import reconcile  # noqa: E402
from payments.reconciliation.statements import read_camt053, read_csv, read_mt940  # noqa: E402

TARGET_SECONDS = 30.0
TARGET_RSS_MB = 700.0
START = dt.date(2026, 11, 1)


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _write_statement(path: Path, n: int, seed: int) -> tuple[LedgerItems, dict[str, int]]:
    """Write the CSV; return the ledger items (loaded by column, as a loader does) and what was planted."""
    rng = random.Random(seed)
    planted = dict.fromkeys(
        ("missing_in_bank", "amount_mismatch", "duplicate", "returned", "missing", "typo"), 0
    )
    items = LedgerItems()
    days: dict[int, dt.date] = {}
    balance = 10**13
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("line_id,booking_date,value_date,amount,currency,balance,reference,description\n")
        for i in range(n):
            ordinal = START.toordinal() + i * 28 // n
            day = days.setdefault(ordinal, dt.date.fromordinal(ordinal))
            amount = -rng.randrange(100_000, 5_000_000, 1000)
            items.append(
                f"TX-{i + 1:010d}",
                i,
                amount,
                day,
                LedgerKind.PAYOUT,
                payout_ref=f"P{i:010d}",
                bank_txn_id=None if i % 5 == 0 else f"FB{i:010d}",
                batch=sys.intern(f"B{i // 10_000:06d}"),
            )
            roll = rng.random()
            if roll < 0.003:
                planted["missing_in_bank"] += 1
                continue
            ref = f"P{i:010d}"
            line_amount = amount
            line_id = f"FB{i:010d}"
            text = f"CHI TRA TRO CAP {ref} THANG 11"
            if 0.003 <= roll < 0.004:
                line_amount = amount + 1000
                planted["amount_mismatch"] += 1
            elif 0.004 <= roll < 0.005:
                line_id, ref = f"ZS{i:010d}", ""
                text = f"CHI TRA TRO CAP P{i:010d}X THANG 11"
                planted["typo"] += 1
            balance += line_amount
            out.write(f"{line_id},{day},{day},{line_amount},VND,{balance},{ref},{text}\n")
            if 0.005 <= roll < 0.006:
                balance += amount
                out.write(f"ZD{i:010d},{day},{day},{amount},VND,{balance},{ref},{text}\n")
                planted["duplicate"] += 1
            elif 0.006 <= roll < 0.007:
                balance -= amount
                out.write(f"ZR{i:010d},{day},{day},{-amount},VND,{balance},{ref},RETURN {ref}\n")
                planted["returned"] += 1
            elif 0.007 <= roll < 0.008:
                balance += 77_000
                out.write(f"ZM{i:010d},{day},{day},77000,VND,{balance},,Nguyen Van Test chuyen tien\n")
                planted["missing"] += 1
    return items, planted


def _phase(clock: dict[str, list[float]], name: str, wall: float, cpu: float) -> None:
    clock[name] = [round(time.perf_counter() - wall, 2), round(time.process_time() - cpu, 2)]


def run_size(n: int) -> dict[str, object]:
    """Measure one size in this process."""
    clock: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "statement.csv"
        items, planted = _write_statement(path, n, seed=n)
        size_mb = path.stat().st_size / 2**20
        before = _peak_mb()
        wall, cpu = time.perf_counter(), time.process_time()
        with path.open("rb") as stream:
            statement = read_csv(stream)
        _phase(clock, "parse", wall, cpu)
    wall, cpu = time.perf_counter(), time.process_time()
    ledger = 10**13 + sum(items.amounts)
    result = reconcile(statement, items, ledger_balance=ledger, ledger_opening=10**13)
    _phase(clock, "match", wall, cpu)
    wall, cpu = time.perf_counter(), time.process_time()
    written = sum(1 for _ in result.outcomes())
    _phase(clock, "write_rows", wall, cpu)
    wall, cpu = time.perf_counter(), time.process_time()
    emitted = sum(1 for _ in result.matches())
    _phase(clock, "match_objects", wall, cpu)
    counts = {c.value: t.count for c, t in result.totals.items()}
    expect = {
        "missing_in_bank": planted["missing_in_bank"],
        "amount_mismatch": planted["amount_mismatch"],
        "duplicate_in_bank": planted["duplicate"],
        "returned": planted["returned"],
        "missing_in_ledger": planted["missing"],
        "suggested": planted["typo"],
    }
    matched = n - planted["missing_in_bank"] - planted["amount_mismatch"] - planted["typo"]
    return {
        "lines": len(statement.lines),
        "items": len(items),
        "csv_mb": round(size_mb, 1),
        "seconds_wall_cpu": clock,
        "lines_per_cpu_second": {
            "parse": round(len(statement.lines) / clock["parse"][1]),
            "match": round(len(statement.lines) / clock["match"][1]),
        },
        "peak_rss_mb": round(_peak_mb(), 1),
        "rss_with_items_before_parse_mb": round(before, 1),
        "matches": emitted,
        "rows": written,
        "categories": counts,
        "planted_found_exactly": all(counts[k] == v for k, v in expect.items())
        and counts[Category.MATCHED.value] == matched,
        "balance_fully_explained": result.balance.fully_explained,
    }


def run_formats(n: int) -> dict[str, object]:
    """Measure camt.053 and MT940 parsing of ``n`` lines (written in memory by the test writers)."""
    from tests.payments.reconciliation.writers import camt053, line, mt940

    rows = [
        line(
            f"FB{i:010d}",
            START + dt.timedelta(days=i * 28 // n),
            -1000 - i % 7,
            f"P{i:010d}",
            f"CHI TRA P{i:010d}",
        )
        for i in range(n)
    ]
    period = (START, START + dt.timedelta(days=29))
    out: dict[str, object] = {}
    for name, data, reader in (
        ("camt053", camt053(rows, 10**12, period=period), read_camt053),
        ("mt940", mt940(rows, 10**12, period=period), read_mt940),
    ):
        t0 = time.perf_counter()
        statement = reader(io.BytesIO(data))
        seconds = time.perf_counter() - t0
        out[name] = {
            "lines": len(statement.lines),
            "mb": round(len(data) / 2**20, 1),
            "parse_seconds": round(seconds, 2),
            "lines_per_second": round(n / seconds),
        }
    return out


def _child(args: list[str]) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, __file__, *args], check=True, capture_output=True, text=True, env={**os.environ}
    )
    result: dict[str, object] = json.loads(done.stdout)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,300000,1000000")
    parser.add_argument("--formats", type=int, default=100_000, help="lines for the camt.053/MT940 parse")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--formats-only", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_size(args.one)))
        return
    if args.formats_only:
        print(json.dumps(run_formats(args.formats_only)))
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    runs = {str(n): _child(["--one", str(n)]) for n in sizes}
    largest = runs[str(max(sizes))]
    clock = largest["seconds_wall_cpu"]
    assert isinstance(clock, dict)
    # CPU seconds: the machine is shared, so wall time also counts other people's work.
    engine_seconds = round(clock["parse"][1] + clock["match"][1] + clock["write_rows"][1], 2)
    peak = largest["peak_rss_mb"]
    assert isinstance(peak, float)
    report = {
        "benchmark": "reconciliation engine (CSV parse + match, no database)",
        "machine": f"{os.cpu_count()} cores",
        "sizes": runs,
        "memory_growth_mb_per_100k_lines": _growth(runs),
        "formats": _child(["--formats-only", str(args.formats)]) if args.formats else None,
        "baseline": "the issue's budget for the whole pipeline: 60 s and 1 GB RSS for 1M lines x 1M items",
        "targets": {
            f"parse+match+write_rows of {max(sizes):,} lines <= {TARGET_SECONDS:.0f} CPU s": {
                "value": round(engine_seconds, 2),
                "met": engine_seconds <= TARGET_SECONDS,
            },
            f"peak RSS <= {TARGET_RSS_MB:.0f} MB": {"value": peak, "met": peak <= TARGET_RSS_MB},
            "planted discrepancies found exactly": {
                "met": all(bool(r["planted_found_exactly"]) for r in runs.values())
            },
        },
    }
    print(json.dumps(report, indent=2))


def _growth(runs: dict[str, dict[str, object]]) -> float | None:
    sizes = sorted(int(n) for n in runs)
    if len(sizes) < 2:
        return None
    low, high = runs[str(sizes[0])]["peak_rss_mb"], runs[str(sizes[-1])]["peak_rss_mb"]
    assert isinstance(low, float)
    assert isinstance(high, float)
    return round((high - low) / ((sizes[-1] - sizes[0]) / 100_000), 1)


if __name__ == "__main__":
    main()

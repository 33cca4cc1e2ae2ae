"""Market traffic: buyers paying stalls at random, through the running simulator.

Each payment goes through ``POST /admin/pay``, so it moves money and is notified to chopay
exactly as ``chopay fakebank pay`` would. The loop is bounded by ``duration`` and paced to
``rate`` payments per second; it reports what it sent and what the simulator refused.
"""

from __future__ import annotations

import csv
import io
import itertools
import random
import time
from dataclasses import dataclass
from typing import Any

import httpx

# Market prices in dong: vegetables, fish, a bowl of pho, fruit by the kilo...
PRICES = (5_000, 10_000, 15_000, 20_000, 25_000, 30_000, 45_000, 50_000, 60_000, 120_000, 250_000)
MEMOS = ("mua rau", "tien ca", "pho bo", "trai cay", "gao", "thit heo", "banh mi", "ca phe")


@dataclass(frozen=True)
class Stall:
    """A merchant account to pay into."""

    bin: str
    account_number: str
    connector: str | None = None


def load_merchants(text: str) -> list[Stall]:
    """Read ``bin,account_number[,connector]`` rows (with that header)."""
    reader = csv.DictReader(io.StringIO(text))
    fields = reader.fieldnames or []
    if fields[:2] != ["bin", "account_number"]:
        raise ValueError("the header must start with bin,account_number")
    stalls = [
        Stall(r["bin"].strip(), r["account_number"].strip(), (r.get("connector") or "").strip() or None)
        for r in reader
    ]
    if not stalls:
        raise ValueError("no merchants to pay")
    return stalls


def run(
    bank_url: str, stalls: list[Stall], *, rate: float, duration: float, seed: int | None = None
) -> dict[str, Any]:
    """Send payments for ``duration`` seconds at ``rate`` per second; return the figures."""
    rng = random.Random(seed)
    sent = refused = amount = 0
    errors: dict[str, int] = {}
    started = time.monotonic()
    with httpx.Client(base_url=bank_url, timeout=10) as client:
        for n in itertools.count():
            due = started + n / rate
            if due - started >= duration:
                break
            if due > time.monotonic():
                time.sleep(due - time.monotonic())
            stall = rng.choice(stalls)
            price = rng.choice(PRICES)
            body = {
                "to_bin": stall.bin,
                "to_account": stall.account_number,
                "amount": price,
                "memo": f"{rng.choice(MEMOS)} {rng.randrange(1000, 9999)}",
                "connector": stall.connector,
            }
            try:
                response = client.post("/admin/pay", json=body)
            except httpx.HTTPError as exc:
                refused += 1
                errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                continue
            if response.is_success:
                sent += 1
                amount += price
            else:
                refused += 1
                code = str(response.json().get("error", response.status_code))
                errors[code] = errors.get(code, 0) + 1
    elapsed = time.monotonic() - started
    return {
        "payments": sent,
        "amount": amount,
        "refused": refused,
        "errors": errors,
        "seconds": round(elapsed, 3),
        "rate": round(sent / max(elapsed, 1e-9), 2),
    }

"""Helpers of the PostgreSQL benchmarks: scratch databases and a pgbench TPC-B baseline."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass

import sqlalchemy as sa

SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432"


def fresh_database(name: str) -> str:
    """Drop and create database ``name`` on the local server; return its URL."""
    admin = sa.create_engine(f"{SERVER}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return f"{SERVER}/{name}"


def ensure_database(url: str) -> str:
    """Create the database ``url`` names if its server lacks it (a fresh machine); return ``url``."""
    server, name = url.rsplit("/", 1)
    admin = sa.create_engine(f"{server}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first()
        if exists is None:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return url


@dataclass(frozen=True)
class TPCB:
    """One pgbench TPC-B run: transactions per second and mean latency."""

    clients: int
    tps: float
    latency_ms: float


def pgbench(dbname: str, clients: int, seconds: int = 20, scale: int = 10, initialise: bool = True) -> TPCB:
    """Run pgbench's TPC-B on ``dbname`` (scale 10: ten hot branch rows) with ``clients``."""
    base = ["-h", "127.0.0.1", "-U", "postgres"]
    if initialise:
        subprocess.run(
            ["pgbench", *base, "-i", "-q", "-s", str(scale), dbname], check=True, capture_output=True
        )
    jobs = str(min(clients, 2))
    out = subprocess.run(
        ["pgbench", *base, "-c", str(clients), "-j", jobs, "-T", str(seconds), dbname],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    tps = re.search(r"tps = ([0-9.]+)", out)
    latency = re.search(r"latency average = ([0-9.]+) ms", out)
    if tps is None or latency is None:
        raise RuntimeError(f"unexpected pgbench output:\n{out}")
    return TPCB(clients, float(tps.group(1)), float(latency.group(1)))

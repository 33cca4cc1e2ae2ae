"""Settings read from ``CHOPAY_*`` environment variables.

Every setting has a documented default so that ``make run`` works with nothing configured.
The table in README.md lists the same settings; ``SETTINGS`` below is its source of truth.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

MIB = 1024 * 1024


@dataclass(frozen=True)
class Settings:
    """Resolved configuration of one chopay process."""

    data_dir: Path = Path("var")
    database_url: str = ""
    redis_url: str | None = None
    log_level: str = "INFO"
    bind: str = "127.0.0.1:8000"
    web_workers: int = 1
    web_threads: int = 64
    read_timeout: float = 10.0
    max_body_bytes: int = 10 * MIB
    keys_dir: Path = Path("var/keys")
    ledger_origin: str = "chopay.local/ledger"
    ledger_signing_key: str | None = None
    ledger_trusted_keys: str = ""
    checkpoint_interval: float = 1.0
    sweep_interval: float = 30.0
    inline_jobs: bool = True
    approvals_required: int = 1
    max_upload_bytes: int = 256 * MIB
    public_rate_limit: str = "60/minute"
    proxy_hops: int = 0
    # The payout rail (payOS Payouts API); the defaults are `chopay fakebank serve`'s demo values.
    payout_url: str = "http://127.0.0.1:8100"
    payout_client_id: str = "fakebank-demo-client"
    payout_api_key: str = "fakebank-demo-api-key"
    payout_checksum_key: str = "fakebank-demo-checksum-key"
    payout_chunk: int = 500
    payout_concurrency: int = 4
    payout_max_attempts: int = 6
    payout_lease: float = 60.0
    payout_backoff: float = 1.0
    # Bank-notification connectors declared here rather than with `chopay connectors add`.
    bank_connectors: str = ""
    # Live payment events: `chopay events` (gunicorn, gevent workers) serves the streams.
    events_bind: str = "127.0.0.1:8001"
    events_workers: int = 1
    events_connections: int = 2000
    events_max_streams: int = 0
    events_stream_seconds: float = 1800.0
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def sqlite(self) -> bool:
        """Tell whether the configured database is SQLite."""
        return self.database_url.startswith("sqlite")


def _bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError(f"expected a boolean, got {value!r}")


_PARSERS: dict[type, Callable[[str], Any]] = {int: int, float: float, bool: _bool, Path: Path}


def from_env(environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Build settings from ``CHOPAY_*`` variables, then apply keyword overrides."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for f in fields(Settings):
        if f.name == "extra":
            continue
        raw = env.get(f"CHOPAY_{f.name.upper()}")
        if raw is None or raw == "":
            continue
        kind = _field_type(f.type)
        try:
            values[f.name] = _PARSERS.get(kind, str)(raw)
        except ValueError as exc:
            raise ValueError(f"CHOPAY_{f.name.upper()}: {exc}") from exc
    values.update(overrides)
    data_dir = Path(values.get("data_dir", Settings.data_dir))
    values["data_dir"] = data_dir
    values.setdefault("keys_dir", data_dir / "keys")
    if not values.get("database_url"):
        values["database_url"] = f"sqlite:///{(data_dir / 'chopay.db').resolve()}"
    if "inline_jobs" not in values:
        values["inline_jobs"] = not values.get("redis_url")
    if "public_rate_limit" in values:
        _rate_limit(values["public_rate_limit"])
    if values.get("proxy_hops", 0) < 0:
        raise ValueError("CHOPAY_PROXY_HOPS: the number of proxies cannot be negative")
    if values.get("approvals_required", 1) < 1:
        raise ValueError("CHOPAY_APPROVALS_REQUIRED: at least one approver is needed")
    if not 1 <= values.get("payout_chunk", 500) <= 1000:
        raise ValueError("CHOPAY_PAYOUT_CHUNK: a chunk holds 1 to 1000 items (the payOS batch limit)")
    if values.get("payout_concurrency", 4) < 1 or values.get("payout_max_attempts", 6) < 1:
        raise ValueError("CHOPAY_PAYOUT_CONCURRENCY and CHOPAY_PAYOUT_MAX_ATTEMPTS must be at least 1")
    return Settings(**values)


def _rate_limit(value: str) -> None:
    from limits import parse

    try:
        parse(value)
    except ValueError:
        raise ValueError(
            f"CHOPAY_PUBLIC_RATE_LIMIT: not a rate limit ({value!r}); "
            "write it as N/second, N/minute or N/hour"
        ) from None


def _field_type(annotation: Any) -> type:
    names = {"int": int, "float": float, "bool": bool, "Path": Path}
    text = str(annotation).split("|")[0].strip()
    return names.get(text, str)


SETTINGS: list[tuple[str, str, str]] = [
    ("CHOPAY_DATA_DIR", "var", "Directory for the SQLite database, keys and the admin token."),
    (
        "CHOPAY_DATABASE_URL",
        "sqlite:///$CHOPAY_DATA_DIR/chopay.db",
        "SQLAlchemy URL; use postgresql+psycopg://user@host/db in production.",
    ),
    (
        "CHOPAY_REDIS_URL",
        "(unset)",
        "Redis for the rq job queue. Unset: jobs run on an in-process worker thread.",
    ),
    (
        "CHOPAY_INLINE_JOBS",
        "true when CHOPAY_REDIS_URL is unset",
        "Run jobs on a thread inside each web process.",
    ),
    ("CHOPAY_LOG_LEVEL", "INFO", "Log level of the JSON log lines on stderr."),
    ("CHOPAY_BIND", "127.0.0.1:8000", "Address `chopay serve` listens on."),
    ("CHOPAY_WEB_WORKERS", "1", "gunicorn worker processes."),
    ("CHOPAY_WEB_THREADS", "64", "Threads per gunicorn worker (each slow client holds one while it sends)."),
    ("CHOPAY_READ_TIMEOUT", "10", "Seconds a started request may wait for more of its body before a 400."),
    ("CHOPAY_MAX_BODY_BYTES", "10485760", "Largest accepted request body (413 above it)."),
    ("CHOPAY_KEYS_DIR", "$CHOPAY_DATA_DIR/keys", "Ledger signing key and data-encryption keys."),
    ("CHOPAY_LEDGER_ORIGIN", "chopay.local/ledger", "Origin line of signed ledger checkpoints."),
    (
        "CHOPAY_LEDGER_SIGNING_KEY",
        "(unset: $CHOPAY_KEYS_DIR/ledger-signing.key)",
        "The ledger signing key itself (PRIVATE+KEY+...), for hosts that keep keys in the environment.",
    ),
    (
        "CHOPAY_LEDGER_TRUSTED_KEYS",
        "(empty)",
        "Extra trusted verifier keys (whitespace-separated vkeys), e.g. retired signing keys.",
    ),
    ("CHOPAY_CHECKPOINT_INTERVAL", "1", "Seconds between ledger checkpoints while entries arrive."),
    ("CHOPAY_SWEEP_INTERVAL", "30", "Seconds between recovery sweeps that re-enqueue unfinished work."),
    (
        "CHOPAY_APPROVALS_REQUIRED",
        "1",
        "Distinct approvers (none of them the batch's creator) a payout batch needs.",
    ),
    (
        "CHOPAY_MAX_UPLOAD_BYTES",
        "268435456",
        "Largest payout batch or beneficiary file accepted by upload (CHOPAY_MAX_BODY_BYTES elsewhere).",
    ),
    (
        "CHOPAY_PUBLIC_RATE_LIMIT",
        "60/minute",
        "Requests per client address to each public endpoint (N/second, N/minute or N/hour); 429 above it.",
    ),
    (
        "CHOPAY_PROXY_HOPS",
        "0",
        "Reverse proxies in front of chopay whose X-Forwarded-For/-Proto are trusted; "
        "0 when clients connect directly.",
    ),
    (
        "CHOPAY_PAYOUT_URL",
        "http://127.0.0.1:8100",
        "Base URL of the payOS Payouts API (payOS: https://api-merchant.payos.vn; default: the simulator).",
    ),
    ("CHOPAY_PAYOUT_CLIENT_ID", "fakebank-demo-client", "payOS payout channel client id (x-client-id)."),
    ("CHOPAY_PAYOUT_API_KEY", "fakebank-demo-api-key", "payOS payout channel API key (x-api-key)."),
    (
        "CHOPAY_PAYOUT_CHECKSUM_KEY",
        "fakebank-demo-checksum-key",
        "payOS payout channel checksum key: signs requests, verifies answers.",
    ),
    ("CHOPAY_PAYOUT_CHUNK", "500", "Payout items per chunk: one rq job and one batch payout at the rail."),
    (
        "CHOPAY_PAYOUT_CONCURRENCY",
        "4",
        "Chunks in flight at once per payout rail, across all workers (a Redis semaphore with Redis).",
    ),
    (
        "CHOPAY_PAYOUT_MAX_ATTEMPTS",
        "6",
        "Sends of one item after transient rail errors before it fails with the last reason.",
    ),
    (
        "CHOPAY_PAYOUT_LEASE",
        "60",
        "Seconds an item stays claimed by a send; after that the sweep asks the rail and resumes it.",
    ),
    (
        "CHOPAY_PAYOUT_BACKOFF",
        "1",
        "First retry delay in seconds after a transient error (doubles, jittered).",
    ),
    (
        "CHOPAY_BANK_CONNECTORS",
        "(empty)",
        "Bank-notification connectors: `NAME=FORMAT[/BIN]:SECRET[,SECRET...]`, separated by `;` or "
        "spaces; FORMAT is chopay, sepay or payos; several secrets are all live (rotation).",
    ),
    (
        "CHOPAY_EVENTS_BIND",
        "127.0.0.1:8001",
        "Address `chopay events` (the live payment streams) listens on.",
    ),
    ("CHOPAY_EVENTS_WORKERS", "1", "gevent worker processes of `chopay events`."),
    (
        "CHOPAY_EVENTS_CONNECTIONS",
        "2000",
        "Open connections (streams) each `chopay events` worker holds at most.",
    ),
    (
        "CHOPAY_EVENTS_MAX_STREAMS",
        "0 (half of CHOPAY_WEB_THREADS; CHOPAY_EVENTS_CONNECTIONS under `chopay events`)",
        "Event streams one process serves at once; beyond, 503 `streams_exhausted`.",
    ),
    (
        "CHOPAY_EVENTS_STREAM_SECONDS",
        "1800",
        "An event stream ends after this long; the client reconnects with Last-Event-ID.",
    ),
]

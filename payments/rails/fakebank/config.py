"""How one simulator process is configured: credentials, faults, accounts, notifications.

Every value has a documented demo default (printed by ``chopay fakebank serve``), so that
chopay's own defaults (``CHOPAY_PAYOUT_*``) point at a simulator started with no flags.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

DEMO_CLIENT_ID = "fakebank-demo-client"
DEMO_API_KEY = "fakebank-demo-api-key"
DEMO_CHECKSUM_KEY = "fakebank-demo-checksum-key"
DEFAULT_PORT = 8100
DEFAULT_NOTIFY_URL = "http://127.0.0.1:8000"

# The payout (source) account: what payouts-account/balance reports and payouts debit.
SOURCE_BIN = "970436"
SOURCE_NUMBER = "1000000001"
SOURCE_NAME = "CHOPAY DEMO DISBURSEMENT"
DEFAULT_SOURCE_BALANCE = 1_000_000_000_000_000
# Money paid in by `pay` comes from outside the bank; this account may go negative.
EXTERNAL_BIN = "970415"
EXTERNAL_NUMBER = "9000000000"
EXTERNAL_NAME = "NAPAS INTERBANK CLEARING"
# NAPAS 24/7 transfers stop at 500 million dong per transaction.
DEFAULT_TRANSFER_LIMIT = 500_000_000
MAX_BATCH_ITEMS = 5_000


@dataclass(frozen=True)
class Connector:
    """Where and how incoming-payment notifications for one chopay connector are delivered."""

    name: str
    format: str  # chopay | sepay | payos
    secret: str
    url: str | None = None


@dataclass(frozen=True)
class FakebankConfig:
    """Everything one ``chopay fakebank serve`` process needs."""

    db: Path = Path("var/fakebank.db")
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    workers: int = 1
    threads: int = 8
    client_id: str = DEMO_CLIENT_ID
    api_key: str = DEMO_API_KEY
    checksum_key: str = DEMO_CHECKSUM_KEY
    error_rate: float = 0.0
    drop_rate: float = 0.0
    latency_ms: int = 0
    settle_ms: int = 0
    seed: int | None = None
    seed_accounts: int = 0
    strict_accounts: bool = False
    transfer_limit: int = DEFAULT_TRANSFER_LIMIT
    source_balance: int = DEFAULT_SOURCE_BALANCE
    notify_url: str = DEFAULT_NOTIFY_URL
    connectors: tuple[Connector, ...] = field(default_factory=tuple)
    retry_base_ms: int = 500
    retry_max_ms: int = 60_000
    max_attempts: int = 10

    def __post_init__(self) -> None:
        for name in ("error_rate", "drop_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        if self.latency_ms < 0 or self.settle_ms < 0:
            raise ValueError("latency and settle times must not be negative")


def parse_connector(text: str) -> Connector:
    """Parse ``NAME=FORMAT:SECRET[@URL]`` (the ``--connector`` flag and FAKEBANK_CONNECTORS)."""
    name, sep, rest = text.partition("=")
    fmt, sep2, secret = rest.partition(":")
    if not sep or not sep2 or not name or not secret:
        raise ValueError(f"connector {text!r} is not NAME=FORMAT:SECRET[@URL]")
    url = None
    if "@http" in secret:
        secret, _, tail = secret.partition("@http")
        url = "http" + tail
    if fmt not in ("chopay", "sepay", "payos"):
        raise ValueError(f"connector {name!r}: format must be chopay, sepay or payos")
    return Connector(name=name, format=fmt, secret=secret, url=url)

"""Accounts of the simulated bank: documented states, seeding, CSV import, funding.

Deterministic states, by the account number's last five digits, for every account the
simulator opens by itself (seeding, or the first time a payout or lookup names it):

==========  ======================================================================
``...99991`` closed: payouts fail ``ACCOUNT_CLOSED``
``...99992`` dormant: payouts fail ``ACCOUNT_DORMANT`` (chopay: ``account_frozen``)
``...99993`` frozen: payouts fail ``ACCOUNT_FROZEN``
``...99994`` not found: the account never exists; payouts fail ``ACCOUNT_NOT_FOUND``
``...99995`` holder-name mismatch: active, but the bank's holder name is another person's
             (lookups return it; a batch with ``validateDestination`` fails
             ``NAME_MISMATCH``)
==========  ======================================================================

Any other number at a BIN of the VietQR directory is an active account with an obviously
fake holder name ("NGUYEN VAN TEST 4821"), opened on first use, unless the simulator runs
with ``--strict-accounts``: then only seeded and imported accounts exist. Imported accounts
keep the status their CSV gives (the name-mismatch pattern still applies to lookups).
An amount above the transfer limit (500,000,000 dong by default, the NAPAS 24/7 limit)
fails ``LIMIT_EXCEEDED``; a BIN outside the directory fails ``BANK_NOT_FOUND``.
"""

from __future__ import annotations

import csv
import io
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from chopay.db import utcnow
from payments.rails.fakebank import config as cfg
from payments.rails.fakebank.models import accounts, bulk_insert, next_id, select_in
from qr import bank_by_bin

STATUSES = ("active", "closed", "dormant", "frozen")
PATTERNS = {"99991": "closed", "99992": "dormant", "99993": "frozen"}
NOT_FOUND_SUFFIX = "99994"
MISMATCH_SUFFIX = "99995"
CSV_COLUMNS = ("bin", "account_number", "holder_name", "status", "balance")
_FAMILY = ("NGUYEN", "TRAN", "LE", "PHAM", "HOANG", "VU", "DANG", "BUI", "DO", "HO")
_MIDDLE = ("VAN", "THI", "MINH", "NGOC", "THANH")


@dataclass(frozen=True)
class Account:
    """One account row."""

    id: int
    bin: str
    number: str
    holder_name: str
    status: str
    balance: int

    def to_dict(self) -> dict[str, Any]:
        """Return the admin view of the account."""
        return {
            "bin": self.bin,
            "account_number": self.number,
            "holder_name": self.holder_name,
            "status": self.status,
            "balance": self.balance,
        }


def pattern_state(number: str) -> str | None:
    """Return the documented state an account number's pattern gives, or None."""
    suffix = number[-5:]
    if suffix == NOT_FOUND_SUFFIX:
        return "not_found"
    if suffix == MISMATCH_SUFFIX:
        return "name_mismatch"
    return PATTERNS.get(suffix)


def fake_name(number: str) -> str:
    """Return the obviously fake holder name the simulator gives an account it opens."""
    digest = sum(ord(c) * (i + 1) for i, c in enumerate(number))
    return f"{_FAMILY[digest % 10]} {_MIDDLE[digest // 10 % 5]} TEST {number[-4:]}"


def bank_name(number: str, registered: str) -> str:
    """Return the holder name the bank reports: another person's for the mismatch pattern."""
    if number.endswith(MISMATCH_SUFFIX):
        return "TRAN THI KHAC TEST"
    return registered


def valid_number(number: str) -> bool:
    """Tell whether ``number`` is an account number (6..19 ASCII letters or digits)."""
    return 6 <= len(number) <= 19 and number.isascii() and number.isalnum()


def known_bin(bin_: str) -> bool:
    """Tell whether ``bin_`` is a bank of the VietQR directory."""
    return bank_by_bin(bin_) is not None


def _row(r: Any) -> Account:
    return Account(r.id, r.bin, r.number, r.holder_name, r.status, r.balance)


def get(conn: Connection, bin_: str, number: str) -> Account | None:
    """Return the account, or None."""
    row = conn.execute(
        sa.select(accounts).where(accounts.c.bin == bin_, accounts.c.number == number)
    ).one_or_none()
    return None if row is None else _row(row)


def resolve(
    conn: Connection, keys: Iterable[tuple[str, str]], *, strict: bool
) -> dict[tuple[str, str], Account]:
    """Return the accounts for ``(bin, number)`` keys, opening pattern accounts as needed."""
    wanted = set(keys)
    found: dict[tuple[str, str], Account] = {}
    ordered = sorted(wanted)
    by_bin: dict[str, list[str]] = {}
    for b, n in ordered:
        by_bin.setdefault(b, []).append(n)
    for b, numbers in by_bin.items():
        # One BIN at a time: SQLite uses the (bin, number) index for this, not for row values.
        sql = "SELECT id, bin, number, holder_name, status, balance FROM accounts WHERE bin = ? AND number IN"
        for r in select_in(conn, sql, numbers, prefix=(b,)):
            found[(r.bin, r.number)] = _row(r)
    if strict:
        return found
    missing = [
        (b, n)
        for b, n in ordered
        if (b, n) not in found and known_bin(b) and valid_number(n) and pattern_state(n) != "not_found"
    ]
    if missing:
        now = utcnow()
        start = next_id(conn, accounts)
        rows = []
        for i, (b, n) in enumerate(missing):
            status = PATTERNS.get(n[-5:], "active")
            rows.append(
                {
                    "id": start + i,
                    "bin": b,
                    "number": n,
                    "holder_name": fake_name(n),
                    "status": status,
                    "balance": 0,
                    "opening_balance": 0,
                    "allow_negative": False,
                    "created_at": now,
                }
            )
            found[(b, n)] = Account(start + i, b, n, fake_name(n), status, 0)
        bulk_insert(conn, accounts, rows)
    return found


def upsert(
    conn: Connection,
    *,
    bin_: str,
    number: str,
    holder_name: str,
    status: str,
    balance: int,
    allow_negative: bool = False,
) -> Account:
    """Create an account or reset an existing one's name, status and balance."""
    if status not in STATUSES:
        raise ValueError(f"status must be one of {', '.join(STATUSES)}")
    if not (len(bin_) == 6 and bin_.isdigit()):
        raise ValueError("bin must be 6 digits")
    if not valid_number(number):
        raise ValueError("account_number must be 6..19 letters or digits")
    if not holder_name.strip() or len(holder_name) > 100:
        raise ValueError("holder_name must be 1..100 characters")
    if balance < 0 and not allow_negative:
        raise ValueError("balance must not be negative")
    existing = get(conn, bin_, number)
    values = {"holder_name": holder_name.strip(), "status": status, "balance": balance}
    if existing is None:
        conn.execute(
            accounts.insert().values(
                bin=bin_,
                number=number,
                opening_balance=balance,
                allow_negative=allow_negative,
                created_at=utcnow(),
                **values,
            )
        )
    else:
        # A reset balance is a new opening balance: statements must still add up.
        delta = balance - existing.balance
        conn.execute(
            accounts.update()
            .where(accounts.c.id == existing.id)
            .values(opening_balance=accounts.c.opening_balance + delta, **values)
        )
    found = get(conn, bin_, number)
    assert found is not None
    return found


def ensure_house_accounts(conn: Connection, source_balance: int) -> None:
    """Create the source (payout) account and the external clearing account if missing."""
    if get(conn, cfg.SOURCE_BIN, cfg.SOURCE_NUMBER) is None:
        upsert(
            conn,
            bin_=cfg.SOURCE_BIN,
            number=cfg.SOURCE_NUMBER,
            holder_name=cfg.SOURCE_NAME,
            status="active",
            balance=source_balance,
        )
    if get(conn, cfg.EXTERNAL_BIN, cfg.EXTERNAL_NUMBER) is None:
        upsert(
            conn,
            bin_=cfg.EXTERNAL_BIN,
            number=cfg.EXTERNAL_NUMBER,
            holder_name=cfg.EXTERNAL_NAME,
            status="active",
            balance=0,
            allow_negative=True,
        )


def seed(conn: Connection, count: int, *, seed: int | None = None, bin_: str = "970436") -> list[Account]:
    """Open ``count`` accounts with fake names; every sixth gets a documented pattern state."""
    rng = random.Random(seed)
    suffixes = ["99991", "99992", "99993", "99995"]
    made = []
    for i in range(count):
        head = f"{rng.randrange(10**6, 10**7)}"
        tail = suffixes[(i // 6) % 4] if i % 6 == 5 else f"{rng.randrange(10**5):05d}"
        if i % 6 != 5 and pattern_state(tail) is not None:
            tail = "00000"  # a random tail must not give a state by accident
        number = head + tail
        state = pattern_state(number)
        status = state if state in STATUSES else "active"
        made.append(
            upsert(
                conn,
                bin_=bin_,
                number=number,
                holder_name=fake_name(number),
                status=status,
                balance=rng.randrange(0, 50_000_000, 1000),
            )
        )
    return made


class AccountImportError(ValueError):
    """A CSV row that cannot be imported; the message names the line and column."""


def import_csv(conn: Connection, text: str) -> int:
    """Import accounts from CSV (bin,account_number,holder_name,status,balance); all or nothing."""
    reader = csv.DictReader(io.StringIO(text))
    header = tuple(reader.fieldnames or ())
    if header != CSV_COLUMNS:
        raise AccountImportError(
            f"line 1: the header must be {','.join(CSV_COLUMNS)}, found {','.join(header)}"
        )
    rows: list[dict[str, Any]] = []
    for line, record in enumerate(reader, start=2):
        if None in record or any(v is None for v in record.values()):
            raise AccountImportError(f"line {line}: expected {len(CSV_COLUMNS)} columns")
        balance_text = record["balance"].strip()
        if not balance_text.lstrip("-").isdigit():
            raise AccountImportError(f"line {line}: balance: {balance_text!r} is not a whole number of dong")
        rows.append({**record, "balance": int(balance_text), "line": line})
    for r in rows:
        try:
            upsert(
                conn,
                bin_=r["bin"].strip(),
                number=r["account_number"].strip(),
                holder_name=r["holder_name"],
                status=r["status"].strip(),
                balance=r["balance"],
            )
        except ValueError as exc:
            raise AccountImportError(f"line {r['line']}: {exc}") from None
    return len(rows)


def import_file(conn: Connection, path: Path) -> int:
    """Import accounts from a CSV file."""
    return import_csv(conn, path.read_text(encoding="utf-8-sig"))


def describe(found: Sequence[Account]) -> str:
    """Return a small table of accounts for the CLI."""
    lines = [f"{'BIN':<7}{'ACCOUNT':<20}{'STATUS':<9}{'BALANCE':>18}  HOLDER"]
    lines += [f"{a.bin:<7}{a.number:<20}{a.status:<9}{a.balance:>18,}  {a.holder_name}" for a in found]
    return "\n".join(lines)

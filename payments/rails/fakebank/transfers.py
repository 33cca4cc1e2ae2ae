"""Money movements: the only code that changes a balance.

Each movement debits one account and credits another in the caller's database
transaction, records both balances after it (so statements need no recomputation) and
gets a bank transaction id, ``FT`` and twelve digits, which is the statement ``line_id``
and the ``bank_txn_id`` chopay records.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from chopay.db import utcnow
from payments.rails.fakebank.models import bulk_insert, bulk_update_balances, next_id, select_in, transfers

KINDS = ("payout", "return", "incoming", "funding")


class InsufficientBalance(Exception):
    """A debit would take an account that forbids it below zero; nothing moved."""

    def __init__(self, account_id: int, needed: int, available: int) -> None:
        super().__init__(f"account {account_id} needs {needed:,} dong and has {available:,}")
        self.needed = needed
        self.available = available


@dataclass(frozen=True)
class Move:
    """One movement to make."""

    kind: str
    from_account: int
    to_account: int
    amount: int
    description: str
    reference: str | None = None
    payer_name: str | None = None


def txn_id(transfer_id: int) -> str:
    """Return the bank transaction id of a movement."""
    return f"FT{transfer_id:012d}"


def transfer_pk(txn: str) -> int | None:
    """Return the row id of a bank transaction id, or None if it is not one."""
    if len(txn) == 14 and txn.startswith("FT") and txn[2:].isdigit():
        return int(txn[2:])
    return None


def move_many(conn: Connection, moves: Sequence[Move], *, at: dt.datetime | None = None) -> list[int]:
    """Make every movement or none; return their row ids in order."""
    if not moves:
        return []
    ids = {m.from_account for m in moves} | {m.to_account for m in moves}
    rows = select_in(conn, "SELECT id, balance, allow_negative FROM accounts WHERE id IN", sorted(ids))
    balance: dict[int, int] = {}
    negative_ok: dict[int, bool] = {}
    for r in rows:
        balance[r.id] = r.balance
        negative_ok[r.id] = r.allow_negative
    debits: dict[int, int] = {}
    for m in moves:
        if m.kind not in KINDS or m.amount <= 0:
            raise ValueError(f"not a movement: {m}")
        debits[m.from_account] = debits.get(m.from_account, 0) + m.amount
    for account_id, total in debits.items():
        if not negative_ok[account_id] and balance[account_id] < total:
            raise InsufficientBalance(account_id, total, balance[account_id])
    start = next_id(conn, transfers)
    booked = at or utcnow()
    out: list[dict[str, Any]] = []
    for i, m in enumerate(moves):
        balance[m.from_account] -= m.amount
        balance[m.to_account] += m.amount
        out.append(
            {
                "id": start + i,
                "kind": m.kind,
                "from_account": m.from_account,
                "to_account": m.to_account,
                "amount": m.amount,
                "from_balance": balance[m.from_account],
                "to_balance": balance[m.to_account],
                "reference": m.reference,
                "description": m.description[:200],
                "payer_name": m.payer_name,
                "booked_at": booked,
            }
        )
    bulk_insert(conn, transfers, out)
    bulk_update_balances(conn, balance)
    return [row["id"] for row in out]


def movements(conn: Connection, reference: str) -> list[dict[str, Any]]:
    """Return every movement carrying ``reference``, oldest first."""
    rows = conn.execute(
        sa.select(transfers).where(transfers.c.reference == reference).order_by(transfers.c.id)
    )
    return [
        {
            "id": txn_id(r.id),
            "kind": r.kind,
            "amount": r.amount,
            "description": r.description,
            "booked_at": r.booked_at.isoformat(),
        }
        for r in rows
    ]


def summary(conn: Connection) -> dict[str, Any]:
    """Count payout movements: references paid, any paid twice, amounts paid and returned."""
    paid = (
        sa.select(transfers.c.reference, sa.func.count().label("n"))
        .where(transfers.c.kind == "payout")
        .group_by(transfers.c.reference)
        .subquery()
    )
    references = conn.execute(sa.select(sa.func.count()).select_from(paid)).scalar() or 0
    doubled = [r.reference for r in conn.execute(sa.select(paid.c.reference).where(paid.c.n > 1).limit(100))]
    totals = {
        r.kind: (r.n, r.total)
        for r in conn.execute(
            sa.select(
                transfers.c.kind, sa.func.count().label("n"), sa.func.sum(transfers.c.amount).label("total")
            )
            .where(transfers.c.kind.in_(("payout", "return")))
            .group_by(transfers.c.kind)
        )
    }
    return {
        "references": references,
        "payouts": totals.get("payout", (0, 0))[0],
        "paid_amount": totals.get("payout", (0, 0))[1] or 0,
        "returns": totals.get("return", (0, 0))[0],
        "returned_amount": totals.get("return", (0, 0))[1] or 0,
        "references_paid_more_than_once": doubled,
    }

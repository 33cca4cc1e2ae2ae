"""The ledger side of a reconciliation, read at a pinned tree size.

Everything here is read below ``tree_size``: only transactions whose log index is smaller,
which is exactly the signed state of the checkpoint the report is pinned to. A transaction
committed later, even one dated inside the statement's period, is not part of the report.

* :func:`load` streams the postings of one account whose transaction falls in the statement's
  period (by its ``occurred_at`` as a Vietnam date) into a column store
  (:class:`~.items.LedgerItems`), in log order, with the references its leaf's metadata
  carries; several postings of one transaction on the account make one item.
* The balances: before the period (the ledger's opening), at the end of the period (the
  balance the statement's closing balance is checked against) and at the tree size.
* :func:`history`: payouts before the period that a statement line names, so that money
  coming back for them is recognised as a return. It is read only when the account has any
  such payouts, and keeps only those named.

References come from ``ledger_transactions.metadata``, which is the leaf's metadata (the
book stores both from one checked spec), read whole: extracting keys in SQL reparses a JSON
column once per key. The Vietnam date is computed by the database as a date ordinal.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from payments.ledger.domain import public_id
from payments.ledger.models import Account, Entry, Posting, Transaction
from payments.reconciliation.domain import VIETNAM, LedgerItem, ledger_kind
from payments.reconciliation.items import REFERENCE_FIELDS, LedgerItems
from payments.reconciliation.references import reference_key

STREAM_ROWS = 20_000
"""Rows fetched per round trip while streaming postings."""


@dataclass(frozen=True)
class LedgerSide:
    """What the ledger says about one account for one statement, at one tree size."""

    items: LedgerItems
    opening: int
    """Balance before the statement's first day."""
    closing: int
    """Balance at the end of the statement's last day."""
    at_tree_size: int
    """Balance after every entry below the tree size."""


def day_start(day: dt.date) -> dt.datetime:
    """Return the instant a Vietnam day begins, in UTC."""
    return dt.datetime(day.year, day.month, day.day, tzinfo=VIETNAM).astimezone(dt.UTC)


def _ordinal(session: Session) -> Any:
    """Return the SQL of a transaction's Vietnam date as a proleptic Gregorian ordinal."""
    if session.get_bind().dialect.name == "postgresql":
        return sa.literal_column(
            "((ledger_transactions.occurred_at AT TIME ZONE INTERVAL '+07:00')::date - DATE '0001-01-01' + 1)"
        )
    # SQLite keeps UTC text; julianday of 0001-01-01 is 1721425.5.
    return sa.literal_column(
        "CAST(julianday(date(ledger_transactions.occurred_at, '+7 hours')) - 1721424.5 AS INTEGER)"
    )


def _postings(session: Session, account_id: int, tree_size: int) -> sa.Select[Any]:
    return (
        sa.select(
            Entry.idx,
            Posting.transaction_id,
            Posting.amount,
            _ordinal(session),
            Transaction.kind,
            Transaction.reverses_id,
            Transaction.meta,
        )
        .join(Entry, Entry.transaction_id == Posting.transaction_id)
        .join(Transaction, Transaction.id == Posting.transaction_id)
        .where(Posting.account_id == account_id, Entry.idx < tree_size)
    )


def _stream(session: Session, stmt: sa.Select[Any]) -> Iterator[tuple[Any, ...]]:
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        # Every row is read: plan for the whole result, not for the first rows as cursors do
        # by default (which picks nested loops that turn quadratic on a large account).
        conn.execute(sa.text("SET LOCAL cursor_tuple_fraction = 1.0"))
    # Options on the statement, not the connection: they must not outlive this query.
    found = conn.execute(stmt.execution_options(yield_per=STREAM_ROWS))
    yield from cast(Iterator[tuple[Any, ...]], iter(found))  # a Row unpacks like the tuple it is


def account_id(session: Session, code: str) -> int | None:
    """Return the id of the ledger account ``code``, or None."""
    return session.scalar(sa.select(Account.id).where(Account.code == code))


def load(session: Session, code: str, *, tree_size: int, period: tuple[dt.date, dt.date]) -> LedgerSide:
    """Read the items and balances of account ``code`` for ``period`` below ``tree_size``."""
    acct = account_id(session, code)
    items = LedgerItems()
    if acct is None:
        return LedgerSide(items, 0, 0, 0)
    lo, hi = day_start(period[0]), day_start(period[1] + dt.timedelta(days=1))
    total, before, after = session.execute(
        sa.select(
            sa.func.coalesce(sa.func.sum(Posting.amount), 0),
            sa.func.coalesce(sa.func.sum(sa.case((Transaction.occurred_at < lo, Posting.amount))), 0),
            sa.func.coalesce(sa.func.sum(sa.case((Transaction.occurred_at >= hi, Posting.amount))), 0),
        )
        .join(Entry, Entry.transaction_id == Posting.transaction_id)
        .join(Transaction, Transaction.id == Posting.transaction_id)
        .where(Posting.account_id == acct, Entry.idx < tree_size)
    ).one()
    stmt = (
        _postings(session, acct, tree_size)
        .where(Transaction.occurred_at >= lo, Transaction.occurred_at < hi)
        .order_by(Entry.idx)
    )
    _fill(items, _stream(session, stmt))
    return LedgerSide(items, int(before), int(total) - int(after), int(total))


def _fill(items: LedgerItems, rows: Iterable[tuple[Any, ...]]) -> None:
    """Append rows of :func:`_postings` to ``items``, one item per transaction."""
    days: dict[int, dt.date] = {}
    append, amounts = items.append, items.amounts
    names = REFERENCE_FIELDS
    last_tx = -1
    for row in rows:
        idx, tx_id, amount, ordinal, kind, reverses, meta = row
        if tx_id == last_tx:
            amounts[-1] += amount  # a second posting of the same transaction on the account
            continue
        last_tx = tx_id
        day = days.get(ordinal)
        if day is None:
            day = days[ordinal] = dt.date.fromordinal(ordinal)
        refs = {name: str(meta[name]) for name in names if name in meta} if meta else {}
        append(
            public_id(tx_id),
            idx,
            amount,
            day,
            ledger_kind(kind, reverses is not None, refs.get("payout_ref")),
            **refs,
        )


def history(
    session: Session, code: str, *, tree_size: int, before: dt.date, named: Iterable[str]
) -> list[LedgerItem]:
    """Return the payouts of ``code`` before ``before`` whose reference is among ``named`` keys."""
    acct = account_id(session, code)
    wanted = set(named)
    if acct is None or not wanted:
        return []
    payout_ref = Transaction.meta["payout_ref"].as_string()
    stmt = (
        _postings(session, acct, tree_size)
        .where(Transaction.occurred_at < day_start(before), Posting.amount < 0, payout_ref.is_not(None))
        .order_by(Entry.idx)
    )
    found = LedgerItems()
    _fill(found, (r for r in _stream(session, stmt) if reference_key(str(r[6]["payout_ref"])) in wanted))
    return list(found)


def has_history(session: Session, code: str, *, tree_size: int, before: dt.date) -> bool:
    """Tell whether ``code`` has any payout before ``before`` (a cheap probe before :func:`history`)."""
    acct = account_id(session, code)
    if acct is None:
        return False
    stmt = (
        sa.select(Posting.id)
        .join(Entry, Entry.transaction_id == Posting.transaction_id)
        .join(Transaction, Transaction.id == Posting.transaction_id)
        .where(
            Posting.account_id == acct,
            Entry.idx < tree_size,
            Posting.amount < 0,
            Transaction.occurred_at < day_start(before),
            Transaction.meta["payout_ref"].as_string().is_not(None),
        )
        .limit(1)
    )
    return session.scalar(stmt) is not None

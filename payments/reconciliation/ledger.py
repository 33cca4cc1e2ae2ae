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

On PostgreSQL the items and balances come from one pass over the account's postings in
transaction order, which the server answers by merging indexes and streams as it goes; a
thread fetches the next rows while the last ones are turned into items. Other databases run
the generic path: a query for the balances, then the period's postings in log order.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from payments.ledger.domain import public_id
from payments.ledger.models import Account, Entry, Posting, Transaction
from payments.reconciliation.domain import VIETNAM, LedgerItem, LedgerKind, ledger_kind
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


_PG_ORDINAL = (
    "((ledger_transactions.occurred_at AT TIME ZONE INTERVAL '+07:00')::date - DATE '0001-01-01' + 1)"
)


def _ordinal(session: Session) -> Any:
    """Return the SQL of a transaction's Vietnam date as a proleptic Gregorian ordinal."""
    if session.get_bind().dialect.name == "postgresql":
        return sa.literal_column(_PG_ORDINAL)
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
    if acct is None:
        return LedgerSide(LedgerItems(), 0, 0, 0)
    if session.get_bind().dialect.name == "postgresql":
        return _load_postgresql(session, acct, tree_size=tree_size, period=period)
    return _load_generic(session, acct, tree_size=tree_size, period=period)


def _load_generic(
    session: Session, acct: int, *, tree_size: int, period: tuple[dt.date, dt.date]
) -> LedgerSide:
    """Read the balances with one query and the items of the period with another, in log order."""
    items = LedgerItems()
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


# Every posting of the account below the tree size, in transaction order, so that PostgreSQL
# merges the three tables' indexes and streams rows as it finds them (no hash tables to build,
# no sort to wait for). Only rows of the period carry their metadata; the others count towards
# the balances before and after it, so one pass gives both the items and the balances.
_PG_POSTINGS = f"""
SELECT e.idx, p.transaction_id, p.amount, {_PG_ORDINAL}, ledger_transactions.kind,
       ledger_transactions.reverses_id IS NOT NULL,
       CASE WHEN ledger_transactions.occurred_at >= %(lo)s AND ledger_transactions.occurred_at < %(hi)s
            THEN ledger_transactions.metadata::text END
FROM ledger_postings p
JOIN ledger_entries e ON e.transaction_id = p.transaction_id
JOIN ledger_transactions ON ledger_transactions.id = p.transaction_id
WHERE p.account_id = %(account)s AND e.idx < %(size)s
ORDER BY p.transaction_id
"""


def _prefetched(fetch: Callable[[], list[Any]], depth: int = 2) -> Iterator[list[Any]]:
    """Yield what ``fetch`` returns until it returns nothing, fetching the next batch meanwhile.

    A thread waits for the database while the caller works on the batch before, so the two
    processes run side by side instead of taking turns. The caller must not use the
    connection until the iteration ends.
    """
    batches: queue.Queue[list[Any] | BaseException] = queue.Queue(depth)
    stop = threading.Event()

    def pump() -> None:
        try:
            while not stop.is_set():
                rows = fetch()
                batches.put(rows)
                if not rows:
                    return
        except BaseException as exc:  # handed to the caller, which raises it
            batches.put(exc)

    worker = threading.Thread(target=pump, name="reconciliation-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            batch = batches.get()
            if isinstance(batch, BaseException):
                raise batch
            if not batch:
                return
            yield batch
    finally:
        stop.set()
        while worker.is_alive():  # let a pump blocked on a full queue see the stop
            with contextlib.suppress(queue.Empty):
                batches.get(timeout=0.05)
        worker.join()


def _load_postgresql(
    session: Session, acct: int, *, tree_size: int, period: tuple[dt.date, dt.date]
) -> LedgerSide:
    """Read items and balances in one streamed pass over the account's postings.

    The rows come through a server-side cursor of plain tuples; the items are put in log
    order afterwards (transaction order is log order unless transactions committed out of
    order). What it returns equals :func:`_load_generic`'s (a test holds it to that).
    """
    items = LedgerItems()
    lo, hi = day_start(period[0]), day_start(period[1] + dt.timedelta(days=1))
    first = period[0].toordinal()
    session.execute(sa.text("SET LOCAL cursor_tuple_fraction = 1.0"))
    driver = cast(Any, session.connection().connection.driver_connection)
    total = before = after = 0
    append, amounts, loads = items.append_row, items.amounts, json.loads
    names = frozenset(REFERENCE_FIELDS)
    kinds: dict[tuple[str, bool, bool], LedgerKind] = {}
    last_tx = -1
    inside = False
    with driver.cursor(name="reconciliation_ledger_load") as cursor:
        cursor.execute(_PG_POSTINGS, {"lo": lo, "hi": hi, "account": acct, "size": tree_size})
        for rows in _prefetched(lambda: cursor.fetchmany(STREAM_ROWS)):
            for idx, tx_id, amount, day, kind, reverses, meta in rows:
                total += amount
                if tx_id == last_tx:
                    if inside:
                        amounts[-1] += amount  # a second posting of the same transaction
                    elif day < first:
                        before += amount
                    else:
                        after += amount
                    continue
                last_tx = tx_id
                inside = meta is not None
                if not inside:
                    if day < first:
                        before += amount
                    else:
                        after += amount
                    continue
                refs = {k: v if type(v) is str else str(v) for k, v in loads(meta).items() if k in names}
                key = (kind, reverses, "payout_ref" in refs)
                found = kinds.get(key)
                if found is None:
                    found = kinds[key] = ledger_kind(kind, reverses, refs.get("payout_ref"))
                append(tx_id, idx, amount, day, found, refs)
    items.sort_by_log()
    return LedgerSide(items, before, total - after, total)


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

"""Payouts as the payOS protocol sees them: create (idempotently), read, list, return.

Each function takes a connection inside the caller's transaction. A transfer's state is
computed when it is read: ``PROCESSING`` until its ``settle_at``, then its final state,
so settling needs no background work and a restarted simulator loses nothing.

Idempotency, in the order it is checked (the first match decides):

1. ``x-idempotency-key`` seen before: the same body gets the same payout; another body 409.
2. The payout's ``referenceId`` seen before: likewise.
3. An item's ``referenceId`` seen before (in any payout): the same content reuses that
   transaction, which is never executed again; other content refuses the whole request.

Only then does anything move, all in one database transaction: if the source cannot cover
the new transfers, the request is refused (``04``) and nothing is recorded, so it can be
sent again once the source is funded.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from payments.rails.fakebank import accounts as acct
from payments.rails.fakebank import config as cfg
from payments.rails.fakebank.models import (
    bulk_insert,
    idempotency_keys,
    next_id,
    parse_sqlite_time,
    payout_transactions,
    payouts,
    select_in,
)
from payments.rails.fakebank.protocol import TRANSACTION_ERRORS, PayoutInput, ProtocolError
from payments.rails.fakebank.transfers import InsufficientBalance, Move, move_many, txn_id
from payments.rails.webhooks import VIETNAM

_DEAD = {"closed": "ACCOUNT_CLOSED", "dormant": "ACCOUNT_DORMANT", "frozen": "ACCOUNT_FROZEN"}


def create(
    conn: Connection,
    request: PayoutInput,
    *,
    idempotency_key: str | None,
    limit: int,
    strict: bool,
    settle: dt.timedelta,
    now: dt.datetime,
) -> int:
    """Create a payout (or find the one this request repeats) and return its row id."""
    if idempotency_key:
        seen = conn.execute(
            sa.select(idempotency_keys).where(idempotency_keys.c.key == idempotency_key)
        ).one_or_none()
        if seen is not None:
            if seen.body_hash != request.body_hash:
                raise ProtocolError("03", "x-idempotency-key was used before with another body")
            return int(seen.payout_id)
    existing = conn.execute(
        sa.select(payouts.c.id, payouts.c.body_hash).where(payouts.c.reference_id == request.reference_id)
    ).one_or_none()
    if existing is not None:
        if existing.body_hash != request.body_hash:
            raise ProtocolError(
                "03", f"referenceId {request.reference_id!r} was used before with another body"
            )
        _remember(conn, idempotency_key, request.body_hash, existing.id)
        return int(existing.id)

    refs = [i.reference_id for i in request.items]
    sql = "SELECT reference_id, content_hash FROM payout_transactions WHERE reference_id IN"
    known: dict[str, str] = {r.reference_id: r.content_hash for r in select_in(conn, sql, refs)}
    for item in request.items:
        if item.reference_id in known and known[item.reference_id] != item.content_hash:
            raise ProtocolError(
                "03", f"transfer referenceId {item.reference_id!r} was used before with other content"
            )
    new = [i for i in request.items if i.reference_id not in known]

    source = acct.get(conn, cfg.SOURCE_BIN, cfg.SOURCE_NUMBER)
    assert source is not None, "the source account is created when the simulator opens its database"
    found = acct.resolve(conn, {(i.to_bin, i.to_account_number) for i in new}, strict=strict)
    verdicts: list[tuple[str | None, acct.Account | None]] = []
    moves: list[Move] = []
    for item in new:
        account = found.get((item.to_bin, item.to_account_number))
        error = _verdict(item.amount, item.to_bin, account, request.validate_destination, limit)
        verdicts.append((error, account))
        if error is None and account is not None:
            moves.append(
                Move("payout", source.id, account.id, item.amount, item.description, item.reference_id)
            )
    try:
        transfer_ids = iter(move_many(conn, moves, at=now))
    except InsufficientBalance as exc:
        raise ProtocolError(
            "04",
            f"insufficient balance: the new transfers need {exc.needed:,} VND, "
            f"the source has {exc.available:,}",
        ) from None

    inserted = conn.execute(
        payouts.insert().values(
            public_id=uuid.uuid4().hex,
            reference_id=request.reference_id,
            kind=request.kind,
            body_hash=request.body_hash,
            category=request.category,
            item_refs=refs,
            created_at=now,
        )
    ).inserted_primary_key
    assert inserted is not None
    payout_id = int(inserted[0])
    new_rows: list[dict[str, Any]] = []
    first = next_id(conn, payout_transactions)
    for n, (item, (error, account)) in enumerate(zip(new, verdicts, strict=True)):
        new_rows.append(
            {
                "id": first + n,
                "reference_id": item.reference_id,
                "payout_id": payout_id,
                "amount": item.amount,
                "description": item.description,
                "to_bin": item.to_bin,
                "to_account_number": item.to_account_number,
                "to_account_name": None
                if account is None
                else acct.bank_name(account.number, account.holder_name),
                "content_hash": item.content_hash,
                "final_state": "FAILED" if error else "SUCCEEDED",
                "error_code": error,
                "error_message": TRANSACTION_ERRORS.get(error or ""),
                "transfer_id": None if error else next(transfer_ids),
                "created_at": now,
                "settle_at": now + settle,
            }
        )
    bulk_insert(conn, payout_transactions, new_rows)
    _remember(conn, idempotency_key, request.body_hash, payout_id)
    return payout_id


def _verdict(amount: int, bin_: str, account: acct.Account | None, validate: bool, limit: int) -> str | None:
    if not acct.known_bin(bin_):
        return "BANK_NOT_FOUND"
    if account is None:
        return "ACCOUNT_NOT_FOUND"
    if account.status in _DEAD:
        return _DEAD[account.status]
    if amount > limit:
        return "LIMIT_EXCEEDED"
    if validate and acct.bank_name(account.number, account.holder_name) != account.holder_name:
        return "NAME_MISMATCH"
    return None


def _remember(conn: Connection, key: str | None, digest: str, payout_id: int) -> None:
    if key:
        conn.execute(
            sa.insert(idempotency_keys)
            .prefix_with("OR IGNORE")
            .values(key=key, body_hash=digest, payout_id=payout_id)
        )


def state(row: Any, now: dt.datetime) -> str:
    """Return a transaction's state as of ``now``."""
    return "PROCESSING" if now < row.settle_at else str(row.final_state)


_TRANSACTIONS = (
    "SELECT id, reference_id, amount, description, to_bin, to_account_number, to_account_name,"
    " final_state, error_code, error_message, transfer_id, settle_at FROM payout_transactions"
    " WHERE reference_id IN"
)


def transaction_id(pk: int) -> str:
    """Return the protocol's id of a transaction: 32 hex digits, like payOS's own ids."""
    return f"{pk:032x}"


def _transaction(row: Any, now: dt.datetime) -> dict[str, Any]:
    settle_at = parse_sqlite_time(row.settle_at)
    current = "PROCESSING" if now < settle_at else str(row.final_state)
    done = current != "PROCESSING"
    return {
        "id": transaction_id(row.id),
        "referenceId": row.reference_id,
        "amount": row.amount,
        "description": row.description,
        "toBin": row.to_bin,
        "toAccountNumber": row.to_account_number,
        "toAccountName": row.to_account_name,
        "reference": txn_id(row.transfer_id) if row.transfer_id and done else None,
        "transactionDatetime": settle_at.astimezone(VIETNAM).isoformat() if done else None,
        "errorMessage": row.error_message if done else None,
        "errorCode": row.error_code if done else None,
        "state": current,
    }


def approval_state(states: list[str]) -> str:
    """Return a payout's approval state from its transactions' states."""
    if any(s == "PROCESSING" for s in states):
        return "PROCESSING"
    failed = sum(1 for s in states if s == "FAILED")
    if failed == len(states):
        return "FAILED"
    return "PARTIAL_COMPLETED" if failed else "COMPLETED"


def view(conn: Connection, payout_id: int, now: dt.datetime) -> dict[str, Any]:
    """Return a payout as the protocol shows it."""
    p = conn.execute(sa.select(payouts).where(payouts.c.id == payout_id)).one()
    refs: list[str] = list(p.item_refs)
    by_ref = {r.reference_id: r for r in select_in(conn, _TRANSACTIONS, refs)}
    items = [_transaction(by_ref[r], now) for r in refs]
    return {
        "id": p.public_id,
        "referenceId": p.reference_id,
        "transactions": items,
        "category": p.category,
        "approvalState": approval_state([t["state"] for t in items]),
        "createdAt": p.created_at.astimezone(VIETNAM).isoformat(),
    }


def find(conn: Connection, identifier: str) -> int | None:
    """Return the row id of the payout with this id or referenceId."""
    row = conn.execute(
        sa.select(payouts.c.id).where(
            sa.or_(payouts.c.public_id == identifier, payouts.c.reference_id == identifier)
        )
    ).first()
    return None if row is None else int(row.id)


def search(
    conn: Connection,
    *,
    reference_id: str | None = None,
    approval: str | None = None,
    category: str | None = None,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    limit: int = 10,
    offset: int = 0,
    now: dt.datetime,
) -> dict[str, Any]:
    """List payouts, newest first, with the protocol's filters.

    ``reference_id`` matches a payout's or one of its transfers' reference; ``start`` and
    ``end`` bound the creation time (end excluded); ``approval`` is a computed state, so it is
    applied to the payouts the other filters leave.
    """
    query = sa.select(payouts.c.id, payouts.c.category).order_by(payouts.c.id.desc())
    if reference_id is not None:
        owner = sa.select(payout_transactions.c.payout_id).where(
            payout_transactions.c.reference_id == reference_id
        )
        query = query.where(sa.or_(payouts.c.reference_id == reference_id, payouts.c.id.in_(owner)))
    if start is not None:
        query = query.where(payouts.c.created_at >= start)
    if end is not None:
        query = query.where(payouts.c.created_at < end)
    ids = [r.id for r in conn.execute(query) if category is None or category in (r.category or [])]
    if approval is None:
        total = len(ids)
        page = [view(conn, i, now) for i in ids[offset : offset + limit]]
    else:
        matching = [p for p in (view(conn, i, now) for i in ids) if p["approvalState"] == approval]
        total = len(matching)
        page = matching[offset : offset + limit]
    return {
        "pagination": {
            "limit": limit,
            "offset": offset,
            "total": total,
            "count": len(page),
            "hasMore": offset + len(page) < total,
        },
        "payouts": page,
    }


def return_transfer(conn: Connection, reference: str, reason: str, now: dt.datetime) -> dict[str, Any]:
    """Return a paid transfer to the source account; its state becomes REVERSED."""
    row = conn.execute(
        sa.select(payout_transactions).where(payout_transactions.c.reference_id == reference)
    ).one_or_none()
    if row is None:
        raise ProtocolError("05", f"no transfer has referenceId {reference!r}")
    if state(row, now) != "SUCCEEDED":
        raise ProtocolError(
            "01", f"transfer {reference!r} is {state(row, now)}; only SUCCEEDED can be returned"
        )
    source = acct.get(conn, cfg.SOURCE_BIN, cfg.SOURCE_NUMBER)
    account = acct.get(conn, row.to_bin, row.to_account_number)
    assert source is not None
    assert account is not None
    try:
        (moved,) = move_many(
            conn,
            [Move("return", account.id, source.id, row.amount, f"RETURN {row.description}", reference)],
            at=now,
        )
    except InsufficientBalance as exc:
        raise ProtocolError("01", f"the destination cannot return the funds: {exc}") from None
    conn.execute(
        payout_transactions.update()
        .where(payout_transactions.c.id == row.id)
        .values(final_state="REVERSED", error_code="RETURNED", error_message=reason[:200])
    )
    return {"referenceId": reference, "state": "REVERSED", "returnTransaction": txn_id(moved)}

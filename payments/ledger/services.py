"""Use cases of the book: accounts, posting (one or many), reversal and balances.

Posting takes each touched account's balance with one atomic conditional update,
``balance = balance + delta WHERE allow_negative OR balance + delta >= 0``, in ascending account
id order. The row lock that update takes serialises concurrent posters per account without lost
updates, and the fixed order means two posters can never wait on each other in a cycle. A batch
aggregates its deltas per account first, so a thousand payouts from one budget cost one update
of that budget; the no-negative rule is checked on the batch's net effect, atomically.

Every committed transaction is picked up by the sequencer (:mod:`payments.ledger.log`), which
gives it a log index; posting asks for a sequencer run once the transaction has committed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from chopay import jobs
from chopay.db import bulk_insert, reserve_ids, transaction, utcnow
from payments.ledger import domain
from payments.ledger.canonical import leaf_content
from payments.ledger.domain import AccountKind, Posting, TransactionSpec
from payments.ledger.errors import (
    AccountExists,
    AccountNotFound,
    AlreadyReversed,
    InsufficientBalance,
    InvalidTransaction,
    TransactionKeyConflict,
    TransactionNotFound,
)
from payments.ledger.models import Account, Entry, Pending, Transaction
from payments.ledger.models import Posting as PostingRow

CHUNK = 500  # keys or codes per IN (...) query


def create_account(
    session: Session, *, code: str, kind: str, currency: str = domain.CURRENCY, allow_negative: bool = True
) -> Account:
    """Open an account; its code is unique and its currency is VND."""
    code = code.strip()
    if not code or len(code) > domain.MAX_CODE or any(c.isspace() for c in code):
        raise InvalidTransaction(
            f"An account code is 1 to {domain.MAX_CODE} characters without spaces.",
            code="field_invalid",
            field="code",
        )
    try:
        kind = AccountKind(kind).value
    except ValueError:
        raise InvalidTransaction(
            f"Unknown account kind {kind!r}.", code="field_invalid", field="kind"
        ) from None
    if currency != domain.CURRENCY:
        raise InvalidTransaction(
            f"Only {domain.CURRENCY} accounts exist; got {currency!r}.",
            code="currency_mismatch",
            field="currency",
        )
    account = Account(code=code, kind=kind, currency=currency, allow_negative=allow_negative, balance=0)
    try:
        with transaction(session):
            session.add(account)
    except IntegrityError:
        raise AccountExists(f"Account {code!r} already exists.") from None
    return account


def ensure_account(session: Session, *, code: str, kind: str, allow_negative: bool = True) -> Account:
    """Return the account ``code``, opening it first if it does not exist."""
    found = session.scalar(sa.select(Account).where(Account.code == code))
    if found is not None:
        return found
    try:
        return create_account(session, code=code, kind=kind, allow_negative=allow_negative)
    except AccountExists:
        return get_account(session, code)


def get_account(session: Session, code: str) -> Account:
    """Return the account ``code`` or raise AccountNotFound."""
    account = session.scalar(sa.select(Account).where(Account.code == code))
    if account is None:
        raise AccountNotFound(f"No account {code!r}.")
    return account


def list_accounts(session: Session, *, after: int | None = None, limit: int = 100) -> list[Account]:
    """Return accounts ordered by id after the cursor id."""
    stmt = sa.select(Account).order_by(Account.id).limit(limit)
    if after is not None:
        stmt = stmt.where(Account.id > after)
    return list(session.scalars(stmt))


def post(session: Session, spec: TransactionSpec) -> Transaction:
    """Record one transaction, or return the one already recorded under its idempotency key."""
    (tx_id,) = post_many(session, [spec])
    tx = session.get(Transaction, tx_id)
    assert tx is not None
    return tx


def post_many(session: Session, specs: Sequence[TransactionSpec]) -> list[int]:
    """Record many transactions in one database transaction; return their ids in order.

    A spec whose key was recorded before with the same content yields the earlier id; with
    different content the whole batch fails with TransactionKeyConflict and nothing is written.
    """
    specs = [spec.normalized() for spec in specs]
    for spec in specs:
        domain.validate(spec)
    keys = [s.idempotency_key for s in specs]
    if len(set(keys)) != len(keys):
        raise InvalidTransaction(
            "The batch repeats an idempotency key.", code="field_invalid", field="idempotency_key"
        )
    for attempt in (1, 2):
        try:
            with transaction(session):
                ids = _post_many(session, specs)
        except IntegrityError as exc:
            if "reverses_id" in str(exc.orig):
                raise AlreadyReversed("That transaction has already been reversed.") from None
            if attempt == 2:
                raise
            # A concurrent poster recorded one of our keys first; the retry's key lookup sees it
            # and answers as a replay or a conflict.
            continue
        break
    _request_sequencing()
    return ids


def _post_many(session: Session, specs: Sequence[TransactionSpec]) -> list[int]:
    existing = _existing_by_key(session, [s.idempotency_key for s in specs])
    fresh: list[TransactionSpec] = []
    for spec in specs:
        found = existing.get(spec.idempotency_key)
        if found is None:
            fresh.append(spec)
        elif found[1] != spec.content_hash():
            raise TransactionKeyConflict(
                f"Idempotency key {spec.idempotency_key!r} was used for a different transaction.",
                transaction=domain.public_id(found[0]),
            )
    if fresh:
        accounts = _accounts_by_code(session, {p.account for s in fresh for p in s.postings})
        _check_reversals(session, fresh)
        now = utcnow()
        new_ids = reserve_ids(session, Transaction, len(fresh))
        rows = [
            {
                "id": tx_id,
                "idempotency_key": s.idempotency_key,
                "content_hash": s.content_hash(),
                "kind": s.kind,
                "memo": s.memo,
                "occurred_at": s.occurred_at or now,
                "metadata": dict(s.metadata),
                "reverses_id": s.reverses,
                "created_at": now,
                "leaf_content": _leaf_content(s, s.occurred_at or now),
            }
            for tx_id, s in zip(new_ids, fresh, strict=True)
        ]
        bulk_insert(session, Transaction, rows)
        bulk_insert(
            session,
            PostingRow,
            [
                {
                    "transaction_id": tx_id,
                    "seq": seq,
                    "account_id": accounts[p.account].id,
                    "amount": p.amount,
                }
                for tx_id, s in zip(new_ids, fresh, strict=True)
                for seq, p in enumerate(s.postings)
            ],
        )
        bulk_insert(session, Pending, [{"transaction_id": tx_id} for tx_id in new_ids])
        _apply_deltas(session, accounts, domain.net_by_account(fresh))
        for s, tx_id in zip(fresh, new_ids, strict=True):
            existing[s.idempotency_key] = (tx_id, "")
    return [existing[s.idempotency_key][0] for s in specs]


def _leaf_content(spec: TransactionSpec, occurred_at: dt.datetime) -> str:
    """Check the spec against every rule of a log leaf, so that whatever posts also sequences."""
    try:
        return leaf_content(
            key=spec.idempotency_key,
            kind=spec.kind,
            memo=spec.memo,
            occurred_at=occurred_at,
            postings=[(p.account, p.amount) for p in spec.postings],
            metadata=spec.metadata,
        )
    except ValueError as exc:
        code = "metadata_invalid" if "metadata" in str(exc) else "leaf_invalid"
        raise InvalidTransaction(str(exc), code=code) from None


def _existing_by_key(session: Session, keys: Sequence[str]) -> dict[str, tuple[int, str]]:
    out: dict[str, tuple[int, str]] = {}
    for i in range(0, len(keys), CHUNK):
        rows = session.execute(
            sa.select(Transaction.idempotency_key, Transaction.id, Transaction.content_hash).where(
                Transaction.idempotency_key.in_(keys[i : i + CHUNK])
            )
        )
        out.update({key: (tx_id, digest) for key, tx_id, digest in rows})
    return out


def _accounts_by_code(session: Session, codes: set[str]) -> dict[str, Account]:
    ordered = sorted(codes)
    found: dict[str, Account] = {}
    for i in range(0, len(ordered), CHUNK):
        found.update(
            {
                a.code: a
                for a in session.scalars(sa.select(Account).where(Account.code.in_(ordered[i : i + CHUNK])))
            }
        )
    missing = sorted(codes - found.keys())
    if missing:
        raise InvalidTransaction(
            f"Unknown account(s): {', '.join(missing)}.", code="account_unknown", accounts=missing
        )
    return found


def _check_reversals(session: Session, specs: Sequence[TransactionSpec]) -> None:
    targets = [s.reverses for s in specs if s.reverses is not None]
    if not targets:
        return
    if len(set(targets)) != len(targets):
        raise AlreadyReversed("The batch reverses one transaction twice.")
    taken = session.scalar(sa.select(Transaction.id).where(Transaction.reverses_id.in_(targets)).limit(1))
    if taken is not None:
        raise AlreadyReversed("That transaction has already been reversed.")


def _apply_deltas(session: Session, accounts: dict[str, Account], deltas: dict[str, int]) -> None:
    moves = sorted((accounts[code].id, delta) for code, delta in deltas.items() if delta)
    if not moves:
        return
    if session.get_bind().dialect.name == "postgresql":
        blocked = _apply_deltas_pg(session, moves)
    else:
        blocked = [
            account_id
            for account_id, delta in moves
            if session.execute(_UPDATE_BALANCE, {"id": account_id, "delta": delta}).first() is None
        ]
    if blocked:
        code = next(c for c, a in accounts.items() if a.id == blocked[0])
        raise InsufficientBalance(
            f"Account {code!r} may not go below zero; this would move it by {deltas[code]}.",
            account=code,
            delta=deltas[code],
        )


def _apply_deltas_pg(session: Session, moves: list[tuple[int, int]]) -> list[int]:
    """Apply all balance moves in two statements; return the ids a no-negative rule refused."""
    ids = [m[0] for m in moves]
    # Lock in ascending id order first, so concurrent batches can never deadlock on each other.
    # NO KEY UPDATE, like the UPDATE itself, does not conflict with the key-share locks that
    # foreign-key checks of concurrently inserted postings hold on the same accounts.
    session.execute(_LOCK_PG, {"ids": ids})
    done = set(session.scalars(_UPDATE_PG, {"ids": ids, "deltas": [m[1] for m in moves]}))
    return [account_id for account_id in ids if account_id not in done]


_UPDATE_BALANCE = sa.text(
    "UPDATE ledger_accounts SET balance = balance + :delta "
    "WHERE id = :id AND (allow_negative OR balance + :delta >= 0) RETURNING balance"
)
_LOCK_PG = sa.text(
    "SELECT id FROM ledger_accounts WHERE id = ANY(CAST(:ids AS bigint[])) ORDER BY id FOR NO KEY UPDATE"
)
_UPDATE_PG = sa.text(
    "UPDATE ledger_accounts AS a SET balance = a.balance + d.delta "
    "FROM unnest(CAST(:ids AS bigint[]), CAST(:deltas AS bigint[])) AS d(id, delta) "
    "WHERE a.id = d.id AND (a.allow_negative OR a.balance + d.delta >= 0) RETURNING a.id"
)


def get_transaction(session: Session, ref: str | int) -> Transaction:
    """Return a transaction by row id or public id."""
    tx_id = ref if isinstance(ref, int) else domain.parse_public_id(ref)
    tx = session.get(Transaction, tx_id) if tx_id is not None else None
    if tx is None:
        raise TransactionNotFound(f"No transaction {ref!r}.")
    return tx


def reverse(session: Session, ref: str | int, *, key: str, reason: str) -> Transaction:
    """Post the mirror of a transaction, linked to it; a transaction is reversed at most once."""
    original = get_transaction(session, ref)
    reason = reason.strip()
    if not reason:
        raise InvalidTransaction("A reversal needs a reason.", code="field_invalid", field="reason")
    spec = TransactionSpec(
        idempotency_key=key,
        kind="reversal",
        memo=f"Reversal of {domain.public_id(original.id)}: {reason}"[: domain.MAX_MEMO],
        postings=domain.mirror([Posting(p.account.code, p.amount) for p in original.postings]),
        metadata={"reason": reason[:200]},
        reverses=original.id,
    )
    return post(session, spec)


def balance(session: Session, code: str, at: dt.datetime | int | None = None) -> int:
    """Return the balance of ``code`` now, at an instant (by occurred_at), or at a log size."""
    account = get_account(session, code)
    if at is None:
        return account.balance
    stmt = sa.select(sa.func.coalesce(sa.func.sum(PostingRow.amount), 0)).where(
        PostingRow.account_id == account.id
    )
    if isinstance(at, dt.datetime):
        stmt = stmt.join(Transaction).where(Transaction.occurred_at <= at)
    else:
        stmt = stmt.join(Entry, Entry.transaction_id == PostingRow.transaction_id).where(Entry.idx < at)
    return int(session.scalar(stmt) or 0)


def _request_sequencing() -> None:
    """Ask for a sequencer run now that new transactions are committed."""
    jobs.signal(SEQUENCE_JOB, queue="ledger")


SEQUENCE_JOB = "payments.ledger.jobs.sequence"

"""Use cases of the book: accounts, posting (one or many), attestations, reversal and balances.

Services take the caller's session, flush, and never commit: a feature's own writes and its
ledger posting land in one database transaction, or not at all. Once that transaction
commits, the sequencer is asked to give the new transactions log indexes.

Posting is lock, check, then write. It first locks every touched account row in ascending id
order (``SELECT ... ORDER BY id FOR NO KEY UPDATE`` on PostgreSQL; SQLite writers are already
serialised by ``BEGIN IMMEDIATE``) and reads their balances; the fixed order means two posters
can never wait on each other in a cycle. Every rule is checked against those balances before
anything is written: an account that forbids a negative balance, and the ``MAX_BALANCE`` bound
on every balance. So a refused post writes nothing, and the caller's transaction stays usable.
The balance update is still one atomic conditional ``balance = balance + delta``, and the
table's CHECK constraints are the last line of defence. A batch aggregates its deltas per
account first, so a thousand payouts from one budget cost one update of that budget, and the
rules are checked on the batch's net effect.

On PostgreSQL one transaction (the path of every request) costs two statements: the account
lock, and one statement that inserts the transaction, its postings and its queue row and moves
the balances. A replay or a race on the idempotency key falls back to a lookup.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from chopay import db, jobs
from chopay.db import UTCDateTime, bulk_insert, reserve_ids, utcnow
from payments.ledger import domain
from payments.ledger.canonical import ATTESTATION, leaf_content
from payments.ledger.domain import AccountKind, Posting, Recorded, TransactionSpec
from payments.ledger.errors import (
    AccountExists,
    AccountNotFound,
    AlreadyReversed,
    BalanceOutOfRange,
    InsufficientBalance,
    InvalidTransaction,
    LedgerError,
    TransactionKeyConflict,
    TransactionNotFound,
)
from payments.ledger.models import Account, Entry, Pending, Transaction
from payments.ledger.models import Posting as PostingRow

SEQUENCE_JOB = "payments.ledger.jobs.sequence"
CHUNK = 500  # keys or codes per IN (...) query


def create_account(
    session: Session, *, code: str, kind: str, currency: str = domain.CURRENCY, allow_negative: bool = True
) -> Account:
    """Open an account; its code is unique and its currency is VND."""
    domain.check_account_code(code)
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
        with session.begin_nested():  # a taken code must not end the caller's transaction
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


def post(session: Session, spec: TransactionSpec) -> Recorded:
    """Record one transaction, or return the one already recorded under its idempotency key."""
    spec = _checked(spec)
    now = utcnow()
    if spec.reverses is None and spec.kind != ATTESTATION:
        tx_id = _post_one(session, spec, now)
    else:
        (tx_id,) = _post_batch(session, [spec], now)
    if tx_id is None:
        return get_transaction(session, _replayed(session, spec))
    return _recorded(tx_id, spec, now)


def post_many(session: Session, specs: Sequence[TransactionSpec]) -> list[int]:
    """Record many transactions together; return their ids in order.

    A spec whose key was recorded before with the same content yields the earlier id; with
    different content the whole batch fails with TransactionKeyConflict and nothing is written.
    """
    checked = [_checked(spec) for spec in specs]
    keys = [s.idempotency_key for s in checked]
    if len(set(keys)) != len(keys):
        raise InvalidTransaction(
            "The batch repeats an idempotency key.", code="field_invalid", field="idempotency_key"
        )
    found = _post_batch(session, checked, utcnow())
    return [
        tx_id if tx_id is not None else _replayed(session, s) for tx_id, s in zip(found, checked, strict=True)
    ]


def post_each(session: Session, specs: Sequence[TransactionSpec]) -> list[Recorded | LedgerError]:
    """Record each of ``specs`` as if posted one after another; return its record or its refusal.

    Unlike :func:`post_many`, a refusal (a rule, an unknown account, a key reused with other
    content) fails that spec alone, writes nothing, and the others are written, each checked
    against the balances the ones before it leave. A key given twice records once: the second
    is a replay of the first, or a conflict.

    Every touched account is locked first, in ascending id order. On PostgreSQL the plain
    transactions of the whole list (no reversal, no attestation) then cost one more statement,
    which writes them all; the rest are posted one by one after them.
    """
    out: list[Recorded | LedgerError | None] = [None] * len(specs)
    plain: list[tuple[int, TransactionSpec]] = []
    others: list[tuple[int, TransactionSpec]] = []
    for i, spec in enumerate(specs):
        try:
            checked = _checked(spec)
        except LedgerError as exc:
            out[i] = exc
            continue
        simple = checked.reverses is None and checked.kind != ATTESTATION
        (plain if simple and _postgres(session) else others).append((i, checked))
    if _postgres(session) and len(plain) + len(others) > 1:
        codes = {p.account for _, spec in [*plain, *others] for p in spec.postings}
        accounts = _lock_accounts(session, codes, require=False)
        if plain:
            for i, result in _post_plain(session, plain, accounts, utcnow()):
                out[i] = result
    else:
        others = sorted([*plain, *others], key=lambda item: item[0])
    for i, spec in others:
        try:
            out[i] = post(session, spec)
        except LedgerError as exc:
            out[i] = exc
    return [r for r in out if r is not None]


def _post_plain(
    session: Session,
    specs: Sequence[tuple[int, TransactionSpec]],
    accounts: Mapping[str, _Locked],
    now: dt.datetime,
) -> list[tuple[int, Recorded | LedgerError]]:
    """Write the plain ``specs`` (PostgreSQL) in one statement, their accounts locked already.

    The statement writes nothing if any key is taken already, and names those keys instead;
    they are replays or conflicts, so the rest is checked again without them and written.
    """
    existing: dict[str, tuple[int, str]] = {}
    for _attempt in range(3):
        results: list[tuple[int, Recorded | LedgerError]] = []
        accepted: list[tuple[int, TransactionSpec, str]] = []  # (place, spec, leaf content)
        first: dict[str, tuple[int, TransactionSpec]] = {}
        repeats: list[tuple[int, TransactionSpec]] = []
        balances = {code: a.balance for code, a in accounts.items()}
        for i, spec in specs:
            key = spec.idempotency_key
            if key in existing or key in first:
                repeats.append((i, spec))
                continue
            try:
                missing = sorted({p.account for p in spec.postings} - accounts.keys())
                if missing:
                    raise InvalidTransaction(
                        f"Unknown account(s): {', '.join(missing)}.", code="account_unknown", accounts=missing
                    )
                deltas = domain.net_by_account([spec])
                now_locked = {c: accounts[c]._replace(balance=balances[c]) for c in deltas}
                _checked_moves(now_locked, deltas)
                content = _leaf_content(spec, spec.occurred_at or now)
            except LedgerError as exc:
                results.append((i, exc))
                continue
            for code, delta in deltas.items():
                balances[code] += delta
            first[key] = (i, spec)
            accepted.append((i, spec, content))
        written, taken = _write_plain(session, accepted, accounts, balances, now) if accepted else ({}, {})
        if taken:
            existing.update(taken)
            continue
        if written:
            _request_sequencing(session)
        for i, spec, _content in accepted:
            results.append((i, _recorded(written[spec.idempotency_key], spec, now)))
        for i, spec in repeats:
            key = spec.idempotency_key
            tx_id, digest = existing.get(key) or (written[key], first[key][1].content_hash())
            if digest != spec.content_hash():
                results.append(
                    (
                        i,
                        TransactionKeyConflict(
                            f"Idempotency key {key!r} was used for a different transaction.",
                            transaction=domain.public_id(tx_id),
                        ),
                    )
                )
            else:
                results.append((i, get_transaction(session, tx_id)))
        return results
    raise RuntimeError("Idempotency keys kept being taken while the posts were written.")


def _write_plain(
    session: Session,
    accepted: Sequence[tuple[int, TransactionSpec, str]],
    accounts: Mapping[str, _Locked],
    balances: Mapping[str, int],
    now: dt.datetime,
) -> tuple[dict[str, int], dict[str, tuple[int, str]]]:
    """Insert ``accepted`` and move the balances to ``balances``; return (ids, taken keys)."""
    moves = sorted(
        (accounts[code].id, balance - accounts[code].balance)
        for code, balance in balances.items()
        if balance != accounts[code].balance
    )
    specs = [spec for _, spec, _ in accepted]
    # One JSON document per table: json.dumps is far cheaper than binding a dozen arrays.
    transactions = [
        [
            s.idempotency_key,
            s.content_hash(),
            s.kind,
            s.memo,
            (s.occurred_at or now).isoformat(),
            dict(s.metadata),
            content,
        ]
        for (_, s, content) in accepted
    ]
    postings = [
        [s.idempotency_key, seq, accounts[p.account].id, p.amount]
        for s in specs
        for seq, p in enumerate(s.postings)
    ]
    rows = (
        _psycopg(session)
        .execute(
            _POST_EACH_PG,
            {
                "keys": [s.idempotency_key for s in specs],
                "transactions": json.dumps(transactions, ensure_ascii=False),
                "postings": json.dumps(postings),
                "moves": json.dumps(moves),
                "created_at": now,
            },
        )
        .fetchall()
    )
    written: dict[str, int] = {}
    taken: dict[str, tuple[int, str]] = {}
    moved = 0
    for what, key, tx_id, digest in rows:
        if what == "tx":
            written[key] = tx_id
        elif what == "taken":
            taken[key] = (tx_id, digest)
        else:
            moved = tx_id
    if not taken and (len(written) != len(specs) or moved != len(moves)):
        # The accounts were locked and checked: only rows changed without the lock get here.
        raise RuntimeError("An account balance changed while it was locked.")
    return written, taken


def attest(
    session: Session,
    *,
    key: str,
    memo: str,
    metadata: Mapping[str, Any],
    occurred_at: dt.datetime | None = None,
) -> Recorded:
    """Seal references (a report's digest, say) in the signed log with a leaf that moves no money."""
    spec = TransactionSpec(key, ATTESTATION, memo, (), occurred_at=occurred_at, metadata=metadata)
    return post(session, spec)


def _checked(spec: TransactionSpec) -> TransactionSpec:
    spec = spec.normalized()
    domain.validate(spec)
    return spec


def _postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _recorded(tx_id: int, spec: TransactionSpec, now: dt.datetime) -> Recorded:
    return Recorded(
        id=tx_id,
        idempotency_key=spec.idempotency_key,
        kind=spec.kind,
        memo=spec.memo,
        occurred_at=(spec.occurred_at or now).astimezone(dt.UTC),
        metadata=dict(spec.metadata),
        postings=tuple(spec.postings),
        reverses_id=spec.reverses,
        created_at=now,
    )


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


class _Locked(NamedTuple):
    id: int
    balance: int
    allow_negative: bool


def _lock_accounts(session: Session, codes: set[str], *, require: bool = True) -> dict[str, _Locked]:
    """Lock the accounts ``codes`` in ascending id order and return their balances."""
    ordered = sorted(codes)
    found: dict[str, _Locked] = {}
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        rows = _psycopg(session).execute(_LOCK_PG, {"codes": ordered})
        found = {code: _Locked(i, balance, allow) for i, code, balance, allow in rows}
    else:
        for start in range(0, len(ordered), CHUNK):
            rows = conn.execute(_ACCOUNTS.where(_A.c.code.in_(ordered[start : start + CHUNK])))
            found.update({code: _Locked(i, balance, allow) for i, code, balance, allow in rows})
    missing = sorted(codes - found.keys())
    if missing and require:
        raise InvalidTransaction(
            f"Unknown account(s): {', '.join(missing)}.", code="account_unknown", accounts=missing
        )
    return found


def _checked_moves(accounts: Mapping[str, _Locked], deltas: Mapping[str, int]) -> list[tuple[int, int]]:
    """Return the balance moves ``(account id, delta)`` in id order, or raise if a rule refuses one."""
    for code, delta in deltas.items():
        account = accounts[code]
        after = account.balance + delta
        if abs(delta) > domain.MAX_BALANCE or abs(after) > domain.MAX_BALANCE:
            raise BalanceOutOfRange(
                f"Account {code!r} would pass the balance limit of {domain.MAX_BALANCE:,} dong.",
                account=code,
                delta=delta,
            )
        if after < 0 and not account.allow_negative:
            raise InsufficientBalance(
                f"Account {code!r} may not go below zero; this would move it by {delta}.",
                account=code,
                delta=delta,
            )
    return sorted((accounts[code].id, delta) for code, delta in deltas.items() if delta)


def _post_one(session: Session, spec: TransactionSpec, now: dt.datetime) -> int | None:
    """Post one transaction; return its id, or None if its key is taken.

    Nothing is written until every rule holds, so no savepoint is needed: on PostgreSQL the
    write is one statement, and on SQLite, whose writers are serialised, no other writer can
    come between the checks and the writes.
    """
    accounts = _lock_accounts(session, {p.account for p in spec.postings})
    try:
        moves = _checked_moves(accounts, domain.net_by_account([spec]))
    except (InsufficientBalance, BalanceOutOfRange):
        if _existing_by_key(session, [spec.idempotency_key]):
            return None  # a replay answers with the original, whatever the balances are now
        raise
    occurred_at = spec.occurred_at or now
    row = {
        "key": spec.idempotency_key,
        "hash": spec.content_hash(),
        "kind": spec.kind,
        "memo": spec.memo,
        "occurred_at": occurred_at,
        "metadata": json.dumps(dict(spec.metadata)),
        "created_at": now,
        "content": _leaf_content(spec, occurred_at),
    }
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        tx_id, updated = (
            _psycopg(session)
            .execute(
                _POST_ONE_PG,
                {
                    **row,
                    "seqs": list(range(len(spec.postings))),
                    "accounts": [accounts[p.account].id for p in spec.postings],
                    "amounts": [p.amount for p in spec.postings],
                    "ids": [m[0] for m in moves],
                    "deltas": [m[1] for m in moves],
                },
            )
            .fetchone()
        )
    else:
        tx_id = conn.execute(_INSERT_ONE, row).scalar()
        if tx_id is None:
            return None
        conn.execute(
            _INSERT_POSTING,
            [
                {"tx": tx_id, "seq": seq, "account": accounts[p.account].id, "amount": p.amount}
                for seq, p in enumerate(spec.postings)
            ],
        )
        conn.execute(_INSERT_PENDING, {"tx": tx_id})
        updated = sum(
            conn.execute(_UPDATE_BALANCE, {"id": i, "delta": d}).first() is not None for i, d in moves
        )
    if tx_id is not None and updated != len(moves):
        # Only rows changed without the lock could get here, after the writes: not a refusal
        # (a LedgerError writes nothing), but a broken invariant; the caller must roll back.
        raise RuntimeError("An account balance changed while it was locked.")
    if tx_id is not None:
        _request_sequencing(session)
    return tx_id  # type: ignore[no-any-return]


def _post_batch(session: Session, specs: Sequence[TransactionSpec], now: dt.datetime) -> list[int | None]:
    """Post ``specs`` in one savepoint; return each new id, or None where the key was taken."""
    for attempt in (1, 2):
        try:
            with session.begin_nested():  # a refused or raced batch leaves the caller's work as it was
                found = _post_batch_rows(session, specs, now)
        except IntegrityError as exc:
            if "reverses_id" in str(exc.orig):
                raise AlreadyReversed("That transaction has already been reversed.") from None
            if attempt == 2:
                raise
            # A concurrent poster recorded one of our keys first; the retry's key lookup sees it
            # and answers as a replay or a conflict.
            continue
        break
    if any(tx_id is not None for tx_id in found):
        _request_sequencing(session)
    return found


def _post_batch_rows(
    session: Session, specs: Sequence[TransactionSpec], now: dt.datetime
) -> list[int | None]:
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
    if not fresh:
        return [None] * len(specs)
    accounts = _lock_accounts(session, {p.account for s in fresh for p in s.postings})
    _check_reversals(session, fresh)
    moves = _checked_moves(accounts, domain.net_by_account(fresh))
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
            {"transaction_id": tx_id, "seq": seq, "account_id": accounts[p.account].id, "amount": p.amount}
            for tx_id, s in zip(new_ids, fresh, strict=True)
            for seq, p in enumerate(s.postings)
        ],
    )
    bulk_insert(session, Pending, [{"transaction_id": tx_id} for tx_id in new_ids])
    _apply_moves(session, moves)
    by_key = {s.idempotency_key: tx_id for s, tx_id in zip(fresh, new_ids, strict=True)}
    return [by_key.get(s.idempotency_key) for s in specs]


def _replayed(session: Session, spec: TransactionSpec) -> int:
    """Return the id recorded under ``spec``'s key with the same content, or raise a conflict."""
    found = _existing_by_key(session, [spec.idempotency_key]).get(spec.idempotency_key)
    if found is None:
        # The key was free after all: the insert lost to the unique constraint on reverses_id.
        raise AlreadyReversed("That transaction has already been reversed.")
    if found[1] != spec.content_hash():
        raise TransactionKeyConflict(
            f"Idempotency key {spec.idempotency_key!r} was used for a different transaction.",
            transaction=domain.public_id(found[0]),
        )
    return found[0]


def _existing_by_key(session: Session, keys: Sequence[str]) -> dict[str, tuple[int, str]]:
    out: dict[str, tuple[int, str]] = {}
    conn = session.connection()
    for i in range(0, len(keys), CHUNK):
        rows = conn.execute(_BY_KEY.where(_T.c.idempotency_key.in_(keys[i : i + CHUNK])))
        out.update({key: (tx_id, digest) for key, tx_id, digest in rows})
    return out


def _check_reversals(session: Session, specs: Sequence[TransactionSpec]) -> None:
    targets = [s.reverses for s in specs if s.reverses is not None]
    if not targets:
        return
    if len(set(targets)) != len(targets):
        raise AlreadyReversed("The batch reverses one transaction twice.")
    taken = session.scalar(sa.select(Transaction.id).where(Transaction.reverses_id.in_(targets)).limit(1))
    if taken is not None:
        raise AlreadyReversed("That transaction has already been reversed.")


def _apply_moves(session: Session, moves: list[tuple[int, int]]) -> None:
    """Move the locked balances; the conditions repeat the checks already made under the lock."""
    if not moves:
        return
    if _postgres(session):
        done = len(
            session.execute(_UPDATE_PG, {"ids": [m[0] for m in moves], "deltas": [m[1] for m in moves]}).all()
        )
    else:
        done = sum(
            session.execute(_UPDATE_BALANCE, {"id": account_id, "delta": delta}).first() is not None
            for account_id, delta in moves
        )
    if done != len(moves):
        raise InsufficientBalance("An account balance changed while it was locked.")


# Core statements: the hot path needs none of the ORM's bookkeeping.
_A = Account.__table__
_T = Transaction.__table__
_ACCOUNTS = sa.select(_A.c.id, _A.c.code, _A.c.balance, _A.c.allow_negative)
_BY_KEY = sa.select(_T.c.idempotency_key, _T.c.id, _T.c.content_hash)
_INSERT_ONE = sa.text(
    "INSERT INTO ledger_transactions (idempotency_key, content_hash, kind, memo, occurred_at, metadata,"
    " created_at, leaf_content) VALUES (:key, :hash, :kind, :memo, :occurred_at, :metadata, :created_at,"
    " :content) ON CONFLICT (idempotency_key) DO NOTHING RETURNING id"
).bindparams(sa.bindparam("occurred_at", type_=UTCDateTime), sa.bindparam("created_at", type_=UTCDateTime))
_INSERT_POSTING = sa.text(
    "INSERT INTO ledger_postings (transaction_id, seq, account_id, amount)"
    " VALUES (:tx, :seq, :account, :amount)"
)
_INSERT_PENDING = sa.text("INSERT INTO ledger_pending (transaction_id) VALUES (:tx)")
# The two statements of the PostgreSQL path go to psycopg directly: a post is a few hundred
# microseconds of Python, and SQLAlchemy's statement handling would be a third of it.
_LOCK_PG = (
    # NO KEY UPDATE, like the UPDATE itself, does not conflict with the key-share locks that
    # foreign-key checks of concurrently inserted postings hold on the same accounts.
    "SELECT id, code, balance, allow_negative FROM ledger_accounts "
    "WHERE code = ANY(%(codes)s::text[]) ORDER BY id FOR NO KEY UPDATE"
)
_BALANCE_OK = "(allow_negative OR balance + {d} >= 0) AND abs(balance + {d}) <= " + str(domain.MAX_BALANCE)
_UPDATE_BALANCE = sa.text(
    "UPDATE ledger_accounts SET balance = balance + :delta "
    f"WHERE id = :id AND {_BALANCE_OK.format(d=':delta')} RETURNING balance"
)
_UPDATE_PG = sa.text(
    "UPDATE ledger_accounts AS a SET balance = a.balance + d.delta "
    "FROM unnest(CAST(:ids AS bigint[]), CAST(:deltas AS bigint[])) AS d(id, delta) "
    f"WHERE a.id = d.id AND {_BALANCE_OK.format(d='d.delta')} RETURNING a.id"
)
_POST_ONE_PG = (
    # Every part depends on the inserted row: when the key is already taken, nothing happens.
    "WITH tx AS ("
    " INSERT INTO ledger_transactions (idempotency_key, content_hash, kind, memo, occurred_at, metadata,"
    " created_at, leaf_content)"
    " VALUES (%(key)s, %(hash)s, %(kind)s, %(memo)s, %(occurred_at)s, %(metadata)s::json, %(created_at)s,"
    " %(content)s) ON CONFLICT (idempotency_key) DO NOTHING RETURNING id),"
    " p AS (INSERT INTO ledger_postings (transaction_id, seq, account_id, amount)"
    " SELECT tx.id, d.seq, d.account_id, d.amount FROM tx, unnest(%(seqs)s::smallint[],"
    " %(accounts)s::bigint[], %(amounts)s::bigint[]) AS d(seq, account_id, amount)),"
    " q AS (INSERT INTO ledger_pending (transaction_id) SELECT id FROM tx),"
    " b AS (UPDATE ledger_accounts AS a SET balance = a.balance + d.delta FROM tx,"
    " unnest(%(ids)s::bigint[], %(deltas)s::bigint[]) AS d(id, delta)"
    f" WHERE a.id = d.id AND {_BALANCE_OK.format(d='d.delta')} RETURNING a.id)"
    " SELECT (SELECT id FROM tx), (SELECT count(*) FROM b)"
)


_POST_EACH_PG = (
    # All or nothing: when a key is taken already, nothing is written and the taken keys are
    # named instead (the caller answers them as replays or conflicts, and writes the rest).
    "WITH taken AS (SELECT idempotency_key, id, content_hash FROM ledger_transactions"
    " WHERE idempotency_key = ANY(%(keys)s::text[])),"
    " tx AS (INSERT INTO ledger_transactions (idempotency_key, content_hash, kind, memo, occurred_at,"
    " metadata, created_at, leaf_content)"
    " SELECT t->>0, t->>1, t->>2, t->>3, (t->>4)::timestamptz, t->5, %(created_at)s, t->>6"
    " FROM json_array_elements(%(transactions)s::json) WITH ORDINALITY AS d(t, n)"
    " WHERE NOT EXISTS (SELECT 1 FROM taken) ORDER BY d.n RETURNING id, idempotency_key),"
    " p AS (INSERT INTO ledger_postings (transaction_id, seq, account_id, amount)"
    " SELECT tx.id, (d->>1)::smallint, (d->>2)::bigint, (d->>3)::bigint"
    " FROM json_array_elements(%(postings)s::json) AS d JOIN tx ON tx.idempotency_key = d->>0),"
    " q AS (INSERT INTO ledger_pending (transaction_id) SELECT id FROM tx),"
    " b AS (UPDATE ledger_accounts AS a SET balance = a.balance + (d->>1)::bigint"
    " FROM json_array_elements(%(moves)s::json) AS d"
    " WHERE a.id = (d->>0)::bigint AND NOT EXISTS (SELECT 1 FROM taken)"
    f" AND {_BALANCE_OK.format(d='(d->>1)::bigint')} RETURNING a.id)"
    " SELECT 'tx', idempotency_key, id, NULL FROM tx"
    " UNION ALL SELECT 'taken', idempotency_key, id, content_hash FROM taken"
    " UNION ALL SELECT 'moved', NULL, count(*), NULL FROM b"
)


def _psycopg(session: Session) -> Any:
    """Return the psycopg connection under the session's transaction."""
    return session.connection().connection.driver_connection


def get_transaction(session: Session, ref: str | int) -> Recorded:
    """Return a transaction by row id or public id, with its postings and log index."""
    tx_id = ref if isinstance(ref, int) else domain.parse_public_id(ref)
    row = (
        session.execute(
            sa.select(Transaction, Entry.idx)
            .outerjoin(Entry, Entry.transaction_id == Transaction.id)
            .where(Transaction.id == tx_id)
        ).one_or_none()
        if tx_id is not None and 1 <= tx_id <= domain.MAX_TX_ID
        else None
    )
    if row is None:
        raise TransactionNotFound(f"No transaction {ref!r}.")
    tx, log_index = row
    postings = session.execute(
        sa.select(Account.code, PostingRow.amount)
        .join(Account, Account.id == PostingRow.account_id)
        .where(PostingRow.transaction_id == tx.id)
        .order_by(PostingRow.seq)
    )
    return Recorded(
        id=tx.id,
        idempotency_key=tx.idempotency_key,
        kind=tx.kind,
        memo=tx.memo,
        occurred_at=tx.occurred_at,
        metadata=tx.meta,
        postings=tuple(Posting(code, amount) for code, amount in postings),
        reverses_id=tx.reverses_id,
        created_at=tx.created_at,
        log_index=log_index,
    )


def reverse(
    session: Session,
    ref: str | int,
    *,
    key: str,
    reason: str,
    metadata: Mapping[str, Any] | None = None,
    occurred_at: dt.datetime | None = None,
) -> Recorded:
    """Post the mirror of a transaction, linked to it; a transaction is reversed at most once.

    ``occurred_at`` dates the reversal when the money moved back (a bank's return), not now.
    """
    original = get_transaction(session, ref)
    if original.kind == ATTESTATION:
        raise InvalidTransaction(
            f"{original.public_id} is an {ATTESTATION}: it moved no money.", code="field_invalid", field="ref"
        )
    reason = domain.nfc(reason).strip()
    if not reason:
        raise InvalidTransaction("A reversal needs a reason.", code="field_invalid", field="reason")
    domain.check_text("reason", reason, domain.MAX_REASON)
    spec = TransactionSpec(
        idempotency_key=key,
        kind="reversal",
        memo=f"Reversal of {original.public_id}: {reason}"[: domain.MAX_MEMO],
        postings=domain.mirror(original.postings),
        occurred_at=occurred_at,
        metadata=metadata or {},
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


def _request_sequencing(session: Session) -> None:
    """Ask for a sequencer run once the caller's transaction has committed."""
    db.after_commit(session, _signal_sequencer)


def _signal_sequencer() -> None:
    jobs.signal(SEQUENCE_JOB, queue="ledger")

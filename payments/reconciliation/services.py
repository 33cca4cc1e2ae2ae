"""Use cases of reconciliation: import a statement, read reports, decide on items, reverse returns.

Services take the caller's session, flush and never commit. Importing parses and validates
the whole file first, so a bad file raises its located 422 before anything is written; a
statement already imported (same fingerprint) returns its first reconciliation and writes
nothing. The report itself is computed by the job (:mod:`.pipeline`), enqueued once the
import commits.

Corrections are never automatic: a ``returned`` item becomes a ledger reversal of the original
payout only through :func:`reverse_return`, which an auditor calls. The reversal carries
``payout_ref``, ``bank_txn_id`` (the return line's id) and ``reason_code`` ``returned`` in its
leaf, and is dated on the return's booking day, so the next reconciliation of that day matches
the return line to it by bank transaction id.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import io
from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from chopay import db, jobs
from chopay.crypto import DataKeys
from payments.ledger import domain as ledger_domain
from payments.ledger import services as ledger
from payments.ledger.domain import Recorded
from payments.reconciliation import report
from payments.reconciliation.domain import Category, MatchConfig
from payments.reconciliation.errors import (
    AccountUnknown,
    DecisionRefused,
    ItemNotFound,
    ReconciliationNotFound,
    ReportNotReady,
    ReturnNotReversible,
    StatementImported,
    UploadInvalid,
)
from payments.reconciliation.ledger import account_id, day_start
from payments.reconciliation.models import (
    STATEMENT_ACCOUNT,
    STATEMENT_CONTENT,
    STATEMENT_REF,
    Decision,
    Item,
    Reconciliation,
    StatementRecord,
)
from payments.reconciliation.statements import (
    PRESETS,
    Statement,
    StatementFormat,
    parse_statement,
    sniff_format,
)

RUN_JOB = "payments.reconciliation.jobs.run"
DEFAULTS = MatchConfig()
MAX_WINDOW_DAYS = 31
MAX_NOTE = 500


@dataclasses.dataclass(frozen=True)
class Upload:
    """A statement file and how to reconcile it."""

    data: bytes
    account: str
    format: StatementFormat | None = None
    preset: str = "bank_simulator"
    period: tuple[dt.date | None, dt.date | None] | None = None
    """CSV only: the statement's period; a day not given is that of its first or last line."""
    date_window_days: int = DEFAULTS.date_window_days
    fuzzy_threshold: int = DEFAULTS.fuzzy_threshold

    def parse(self) -> Statement:
        """Read and validate the file completely; raise its located problems."""
        kind = self.format or sniff_format(self.data[:512])
        if kind is not StatementFormat.CSV and self.period is not None:
            raise UploadInvalid("from and to are given by the statement itself; send them for CSV only.")
        if self.preset not in PRESETS:
            raise UploadInvalid(f"preset must be one of {', '.join(sorted(PRESETS))}.")
        return parse_statement(io.BytesIO(self.data), kind, mapping=self.preset, period=self.period)


def config_of(rec: Reconciliation) -> MatchConfig:
    """Return the matching configuration a reconciliation runs with."""
    return MatchConfig(date_window_days=rec.date_window_days, fuzzy_threshold=rec.fuzzy_threshold)


def import_statement(
    session: Session,
    upload: Upload,
    statement: Statement,
    keys: DataKeys,
    *,
    user_id: int | None,
    enqueue: bool = True,
) -> tuple[Reconciliation, bool]:
    """Store a validated statement and queue its reconciliation; return it and whether it is new.

    The same statement imported again returns its first reconciliation and stores nothing.
    """
    ledger_domain.check_account_code(upload.account, "account")
    existing = _by_fingerprint(session, statement.fingerprint)
    if existing is not None:
        return _same_account(existing, upload.account), False
    if account_id(session, upload.account) is None:
        raise AccountUnknown(f"There is no ledger account {upload.account!r} to reconcile against.")
    record = StatementRecord(
        fingerprint=statement.fingerprint,
        format=statement.format,
        account=None
        if statement.account is None
        else keys.encrypt(statement.account, STATEMENT_ACCOUNT.context),
        statement_ref=None
        if statement.statement_id is None
        else keys.encrypt(statement.statement_id, STATEMENT_REF.context),
        period_from=statement.period_from,
        period_to=statement.period_to,
        opening_balance=statement.opening_balance,
        closing_balance=statement.closing_balance,
        line_count=len(statement.lines),
        content=keys.encrypt(report.pack(upload.data), STATEMENT_CONTENT.context),
        content_sha256=hashlib.sha256(upload.data).hexdigest(),
        content_bytes=len(upload.data),
        imported_by=user_id,
    )
    try:
        with session.begin_nested():  # a concurrent import of the same statement wins the race
            session.add(record)
            session.flush()
    except IntegrityError:
        raced = _by_fingerprint(session, statement.fingerprint)
        if raced is None:
            raise
        return _same_account(raced, upload.account), False
    rec = Reconciliation(
        statement_id=record.id,
        account=upload.account,
        status="queued",
        phase="queued",
        progress=0,
        date_window_days=upload.date_window_days,
        fuzzy_threshold=upload.fuzzy_threshold,
        created_by=user_id,
    )
    session.add(rec)
    session.flush()
    if enqueue:
        db.after_commit(session, _enqueuer(rec.id))
    return rec, True


def _sealed(keys: DataKeys, value: str | None, context: str) -> str | None:
    return None if value is None else keys.encrypt(value, context)


def _enqueuer(reconciliation_id: int) -> Callable[[], object]:
    def enqueue() -> object:
        return jobs.signal(RUN_JOB, reconciliation_id)

    return enqueue


def _by_fingerprint(session: Session, fingerprint: str) -> Reconciliation | None:
    return session.scalar(
        sa.select(Reconciliation)
        .join(StatementRecord, StatementRecord.id == Reconciliation.statement_id)
        .where(StatementRecord.fingerprint == fingerprint)
    )


def _same_account(rec: Reconciliation, account: str) -> Reconciliation:
    if rec.account != account:
        raise StatementImported(
            f"This statement was already imported as {rec.public_id}, against {rec.account}.",
            reconciliation=rec.id,
        )
    return rec


def get(session: Session, reconciliation_id: int) -> Reconciliation:
    """Return a reconciliation or raise ReconciliationNotFound."""
    rec = session.get(Reconciliation, reconciliation_id)
    if rec is None:
        raise ReconciliationNotFound(f"No reconciliation {reconciliation_id}.")
    return rec


def statement_of(session: Session, rec: Reconciliation) -> StatementRecord:
    """Return the statement a reconciliation matches."""
    found = session.get(StatementRecord, rec.statement_id)
    assert found is not None
    return found


def list_reconciliations(session: Session, *, after: int | None, limit: int) -> list[Reconciliation]:
    """Return reconciliations in id order after the cursor id."""
    stmt = sa.select(Reconciliation).order_by(Reconciliation.id).limit(limit)
    if after is not None:
        stmt = stmt.where(Reconciliation.id > after)
    return list(session.scalars(stmt))


def _item(session: Session, rec: Reconciliation, position: int, *, lock: bool = False) -> Item:
    if rec.status != "done":
        raise ReportNotReady(f"{rec.public_id} is {rec.status}: its report is not written yet.")
    stmt = sa.select(Item).where(Item.reconciliation_id == rec.id, Item.position == position)
    item = session.scalar(stmt)
    if item is None:
        raise ItemNotFound(f"{rec.public_id} has no item {position}.")
    if lock:
        # Lock, then check: two auditors deciding one item at once get one decision.
        session.scalar(sa.select(Reconciliation.id).where(Reconciliation.id == rec.id).with_for_update())
    existing = session.scalar(
        sa.select(Decision.action).where(Decision.reconciliation_id == rec.id, Decision.position == position)
    )
    if existing is not None:
        raise DecisionRefused(
            f"Item {position} of {rec.public_id} is already {existing}.", code="item_decided"
        )
    return item


def _check_note(note: str | None, name: str = "note") -> str | None:
    if note is None:
        return None
    text = ledger_domain.nfc(note).strip()
    ledger_domain.check_text(name, text, MAX_NOTE)
    return text or None


def decide(
    session: Session, reconciliation_id: int, position: int, *, action: str, user_id: int, note: str | None
) -> Decision:
    """Confirm or reject a suggested match."""
    rec = get(session, reconciliation_id)
    item = _item(session, rec, position, lock=True)
    if item.category != Category.SUGGESTED:
        raise DecisionRefused(
            f"Item {position} is {item.category}: only suggested matches are confirmed or rejected.",
            code="item_not_suggested",
        )
    decision = Decision(
        reconciliation_id=rec.id, position=position, action=action, note=_check_note(note), decided_by=user_id
    )
    session.add(decision)
    session.flush()
    return decision


def reverse_return(
    session: Session, reconciliation_id: int, position: int, *, user_id: int, reason: str
) -> tuple[Decision, Recorded]:
    """Post the ledger reversal of the payout a ``returned`` item names, on an auditor's word."""
    rec = get(session, reconciliation_id)
    item = _item(session, rec, position, lock=True)
    if item.category != Category.RETURNED or item.related is None:
        raise DecisionRefused(
            f"Item {position} is {item.category}: only returned payouts are reversed.",
            code="item_not_returned",
        )
    original = ledger.get_transaction(session, item.related)
    on_account = sum(p.amount for p in original.postings if p.account == rec.account)
    if item.amount is None or item.amount != -on_account:
        raise ReturnNotReversible(
            f"The return of {item.amount:,} dong does not mirror {original.public_id} ({on_account:,} on "
            f"{rec.account}); post a journal entry for a partial return instead.",
            transaction=original.public_id,
        )
    assert item.line_id is not None
    assert item.booking_date is not None
    metadata = {"bank_txn_id": item.line_id, "reason_code": "returned"}
    payout_ref = original.metadata.get("payout_ref")
    if payout_ref is not None:
        metadata["payout_ref"] = str(payout_ref)
    reversal = ledger.reverse(
        session,
        original.id,
        key=f"reconciliation:{rec.public_id}:{position}:reverse",
        reason=_check_note(reason, "reason") or "",
        metadata=metadata,
        occurred_at=day_start(item.booking_date),
    )
    decision = Decision(
        reconciliation_id=rec.id,
        position=position,
        action="reversed",
        note=_check_note(reason, "reason"),
        reversal_id=reversal.id,
        decided_by=user_id,
    )
    session.add(decision)
    session.flush()
    return decision, reversal


def import_upload(
    session: Session, upload: Upload, keys: DataKeys, *, user_id: int | None
) -> tuple[Reconciliation, bool]:
    """Validate an uploaded statement completely, then import it (see :func:`import_statement`)."""
    ledger_domain.check_account_code(upload.account, "account")
    if account_id(session, upload.account) is None:
        raise AccountUnknown(f"There is no ledger account {upload.account!r} to reconcile against.")
    return import_statement(session, upload, upload.parse(), keys, user_id=user_id)

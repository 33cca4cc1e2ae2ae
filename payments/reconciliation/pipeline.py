"""The reconciliation run: pin a checkpoint, read the ledger, match, write and seal the report.

:func:`run` is what the rq job and ``chopay reconcile`` execute, in units of work of its own:

1. **claim**: a queued (or interrupted) reconciliation becomes ``running``;
2. **pin**: pending ledger entries are sequenced and a checkpoint signed, and the latest
   checkpoint (tree size, root, the signed note) is recorded; a rerun keeps the pinned one,
   so a report is always computed against the same signed state;
3. **load**: the mapped account's postings below the pinned tree size (:mod:`.ledger`);
4. **match**: the engine (:func:`payments.reconciliation.matching.reconcile`);
5. **write and seal**, in one unit of work: the items, totals and balance check, the digest,
   and the attestation leaf (``reconciliation``, ``report_digest``, ``checkpoint_size``) that
   seals the digest in the signed log. The report and its seal land together or not at all.

Each step re-reads its state, so running a reconciliation twice is safe: a finished one is
left alone, and two runs at once write one report (the second finds it written). Progress is
committed between steps, so readers see the phase. A failure that retrying cannot cure (no
signed checkpoint, a stored file that no longer parses to its fingerprint) marks the
reconciliation ``failed`` with a code; anything else propagates, for the queue to retry.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable

from sqlalchemy.orm import Session

from chopay.config import Settings
from chopay.crypto import DataKeys
from chopay.db import Database, utcnow
from payments.ledger import jobs as ledger_jobs
from payments.ledger import services as ledger_services
from payments.ledger import tree
from payments.reconciliation import ledger, report
from payments.reconciliation.domain import LedgerItem
from payments.reconciliation.errors import ReconciliationFailed
from payments.reconciliation.matching import reconcile
from payments.reconciliation.models import STATEMENT_CONTENT, Reconciliation, StatementRecord
from payments.reconciliation.references import compile_patterns, line_keys
from payments.reconciliation.result import Reconciliation as Result
from payments.reconciliation.services import config_of
from payments.reconciliation.statements import PRESETS, Statement, parse_statement

log = logging.getLogger("chopay.reconciliation")

Phase = Callable[[str], None]


def _quiet(_phase: str) -> None:
    return None


def run(
    database: Database,
    settings: Settings,
    keys: DataKeys,
    reconciliation_id: int,
    *,
    statement: Statement | None = None,
    on_phase: Phase = _quiet,
) -> str:
    """Run one reconciliation to its end; return its final status.

    ``statement`` is the parsed statement when the caller has it (the CLI); the job reads
    the stored file instead. ``on_phase`` is told as each phase begins (benchmarks time them).
    """
    with database.unit_of_work() as s:
        rec = s.get(Reconciliation, reconciliation_id, with_for_update=True)
        if rec is None or rec.status in ("done", "failed"):
            return "missing" if rec is None else rec.status
        rec.status = "running"
        rec.started_at = rec.started_at or utcnow()
        _advance(rec, "pinning", 5)
    try:
        on_phase("pin")
        size = _pin(database, settings, reconciliation_id)
        if statement is None:
            on_phase("parse")
            statement = _stored_statement(database, keys, reconciliation_id)
        _progress(database, reconciliation_id, "loading", 20)
        on_phase("load")
        with database.read_session() as s:
            rec = _get(s, reconciliation_id)
            config = config_of(rec)
            period = (statement.period_from, statement.period_to)
            side = ledger.load(s, rec.account, tree_size=size, period=period)
            earlier = _history(s, rec.account, size, statement, config.min_token, config.reference_patterns)
        _progress(database, reconciliation_id, "matching", 45)
        on_phase("match")
        result = reconcile(
            statement,
            side.items,
            ledger_balance=side.closing,
            ledger_opening=side.opening,
            history=earlier,
            config=config,
        )
        _progress(database, reconciliation_id, "writing", 70)
        on_phase("write")
        return _write(database, keys, reconciliation_id, result, side.at_tree_size)
    except ReconciliationFailed as exc:
        with database.unit_of_work() as s:
            rec = _get(s, reconciliation_id, lock=True)
            rec.status = "failed"
            rec.error_code = exc.code
            rec.error_detail = exc.detail[:500]
            rec.finished_at = utcnow()
            _advance(rec, "failed", rec.progress)
        log.warning("reconciliation failed", extra={"reconciliation": reconciliation_id, "code": exc.code})
        return "failed"


def _get(session: Session, reconciliation_id: int, *, lock: bool = False) -> Reconciliation:
    rec = session.get(Reconciliation, reconciliation_id, with_for_update=lock, populate_existing=True)
    assert rec is not None
    return rec


def _advance(rec: Reconciliation, phase: str, progress: int) -> None:
    rec.phase = phase
    rec.progress = progress
    rec.updated_at = utcnow()


def _progress(database: Database, reconciliation_id: int, phase: str, progress: int) -> None:
    with database.unit_of_work() as s:
        _advance(_get(s, reconciliation_id, lock=True), phase, progress)


def _pin(database: Database, settings: Settings, reconciliation_id: int) -> int:
    """Return the pinned tree size, pinning the latest checkpoint first if none is."""
    with database.read_session() as s:
        pinned = _get(s, reconciliation_id).checkpoint_size
    if pinned is not None:
        return pinned
    # Seal what is committed now, so that the report covers everything recorded before it ran.
    ledger_jobs.seal(database, settings, force=True)
    with database.unit_of_work() as s:
        rec = _get(s, reconciliation_id, lock=True)
        if rec.checkpoint_size is not None:
            return rec.checkpoint_size
        cp = tree.latest_checkpoint(s)
        if cp is None:
            raise ReconciliationFailed(
                "The ledger has no signed checkpoint to pin the report to (is the signing key installed?).",
                code="checkpoint_missing",
            )
        rec.checkpoint_size, rec.checkpoint_root, rec.checkpoint_note = cp.size, cp.root, cp.note
        return cp.size


def _stored_statement(database: Database, keys: DataKeys, reconciliation_id: int) -> Statement:
    """Parse the statement file stored at import, and check it is still the one imported."""
    with database.read_session() as s:
        rec = _get(s, reconciliation_id)
        record = s.get(StatementRecord, rec.statement_id)
        assert record is not None
        raw = report.unpack(keys.decrypt(record.content, STATEMENT_CONTENT.context))
        fmt, fingerprint = record.format, record.fingerprint
        period = (record.period_from, record.period_to)
    if fmt.startswith("csv:"):
        statement = parse_statement(io.BytesIO(raw), "csv", mapping=PRESETS[fmt[4:]], period=period)
    else:
        statement = parse_statement(io.BytesIO(raw), "mt940" if fmt == "mt940" else "camt053")
    if statement.fingerprint != fingerprint:
        raise ReconciliationFailed(
            "The stored statement no longer reads as the statement imported.", code="statement_changed"
        )
    return statement


def _history(
    session: Session,
    account: str,
    size: int,
    statement: Statement,
    min_token: int,
    patterns: tuple[str, ...],
) -> list[LedgerItem]:
    """Return earlier payouts that money coming in on the statement names (possible returns)."""
    start = statement.period_from
    if not ledger.has_history(session, account, tree_size=size, before=start):
        return []
    lines = statement.lines
    compiled = compile_patterns(patterns)
    named: set[str] = set()
    for i, amount in enumerate(lines.amounts):
        if amount > 0:
            named.update(
                line_keys(
                    lines.line_ids[i],
                    lines.references[i],
                    lines.descriptions[i],
                    min_token=min_token,
                    patterns=compiled,
                )
            )
    return ledger.history(session, account, tree_size=size, before=start, named=named)


def _write(
    database: Database, keys: DataKeys, reconciliation_id: int, result: Result, at_tree_size: int
) -> str:
    with database.unit_of_work() as s:
        rec = _get(s, reconciliation_id, lock=True)
        if rec.status != "running" or rec.report_digest is not None:
            return rec.status  # another run wrote the report meanwhile
        record = s.get(StatementRecord, rec.statement_id)
        assert record is not None
        assert rec.checkpoint_size is not None
        rec.ledger_at_checkpoint = at_tree_size
        digest = report.write(s, rec, record, result, keys)
        sealed = ledger_services.attest(
            s,
            key=f"reconciliation:{rec.public_id}",
            memo=f"Reconciliation {rec.public_id} of {rec.account}: report sealed",
            metadata={
                "reconciliation": rec.public_id,
                "report_digest": digest,
                "checkpoint_size": rec.checkpoint_size,
            },
        )
        rec.report_digest = digest
        rec.attestation_id = sealed.id
        rec.status = "done"
        rec.finished_at = utcnow()
        _advance(rec, "done", 100)
    log.info(
        "reconciliation sealed",
        extra={
            "reconciliation": reconciliation_id,
            "items": rec.item_count,
            "checkpoint": rec.checkpoint_size,
        },
    )
    return "done"

"""Checking a report's seal: its rows against its digest, and the digest against the signed log.

:func:`verify` recomputes the digest of a stored report from its rows (:mod:`.report`), reads
the attestation leaf that sealed it, and proves that leaf with an inclusion proof in the
latest signed checkpoint; it also opens the pinned checkpoint's note and checks that the log
still has that root at that size. Every check that fails is named in ``problems``; the report
holds only when there are none. An auditor can repeat the last steps offline with the
returned leaf, proof and checkpoint note, and the first with the canonical report
(``report.jsonl``), whose SHA-256 is the sealed digest.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

from chopay.crypto import DataKeys
from payments.ledger import merkle, tree
from payments.ledger import services as ledger
from payments.ledger.errors import CorruptEntry, EntryNotFound
from payments.ledger.note import NoteError, Verifier, open_checkpoint
from payments.reconciliation import report
from payments.reconciliation.errors import ReportNotReady
from payments.reconciliation.models import Reconciliation


def verify(
    session: Session, rec: Reconciliation, keys: DataKeys, verifiers: Sequence[Verifier]
) -> dict[str, Any]:
    """Check a sealed report end to end; return what was checked and every problem found."""
    if rec.report_digest is None or rec.attestation_id is None:
        raise ReportNotReady(f"{rec.public_id} is {rec.status}: it has no sealed report yet.")
    problems: list[str] = []
    recomputed = report.digest_of_stored(session, rec, keys)
    sealed = ledger.get_transaction(session, rec.attestation_id)
    meta = sealed.metadata
    if meta.get("reconciliation") != rec.public_id:
        problems.append(
            f"the attestation {sealed.public_id} seals {meta.get('reconciliation')}, not {rec.public_id}"
        )
    if meta.get("report_digest") != recomputed:
        problems.append(
            f"the stored report's digest is {recomputed}, but the signed log sealed "
            f"{meta.get('report_digest')}: the report was changed after it was sealed"
        )
    if rec.report_digest != meta.get("report_digest"):
        problems.append("the digest recorded on the reconciliation differs from the sealed one")
    if meta.get("checkpoint_size") != rec.checkpoint_size:
        problems.append(
            f"the seal names checkpoint size {meta.get('checkpoint_size')}, the report {rec.checkpoint_size}"
        )
    pinned = _pinned(session, rec, verifiers, problems)
    attestation = _proved(session, sealed.log_index, verifiers, problems)
    return {
        "ok": not problems,
        "problems": problems,
        "report_digest": meta.get("report_digest"),
        "recomputed_digest": recomputed,
        "attestation": {"transaction": sealed.public_id, **attestation},
        "pinned_checkpoint": pinned,
    }


def _pinned(
    session: Session, rec: Reconciliation, verifiers: Sequence[Verifier], problems: list[str]
) -> dict[str, Any]:
    assert rec.checkpoint_note is not None
    assert rec.checkpoint_size is not None
    assert rec.checkpoint_root is not None
    try:
        checkpoint, signers = open_checkpoint(rec.checkpoint_note, verifiers)
    except NoteError as exc:
        problems.append(f"the pinned checkpoint's note does not verify: {exc}")
        return {"size": rec.checkpoint_size, "signed_by": []}
    if (checkpoint.size, checkpoint.root) != (rec.checkpoint_size, rec.checkpoint_root):
        problems.append("the pinned checkpoint's note does not match the recorded size and root")
    elif tree.root_at(session, checkpoint.size) != checkpoint.root:
        problems.append(f"the log no longer has the pinned root at size {checkpoint.size}")
    return {"size": checkpoint.size, "root": checkpoint.root.hex(), "signed_by": signers}


def _proved(
    session: Session, index: int | None, verifiers: Sequence[Verifier], problems: list[str]
) -> dict[str, Any]:
    if index is None:
        problems.append("the attestation is not in the log yet: wait for the sequencer and check again")
        return {"index": None}
    latest = tree.latest_checkpoint(session)
    try:
        proof = tree.inclusion(session, index)
    except EntryNotFound:
        problems.append(f"entry {index} is not covered by a signed checkpoint yet: check again in a moment")
        return {"index": index}
    except CorruptEntry as exc:
        problems.append(f"the attestation leaf at index {index} was altered: {exc.detail}")
        return {"index": index}
    assert latest is not None
    try:
        checkpoint, _ = open_checkpoint(latest.note, verifiers)
    except NoteError as exc:
        problems.append(f"the latest checkpoint does not verify: {exc}")
        checkpoint = None
    if checkpoint is not None and not (
        checkpoint.size == proof["tree_size"]
        and merkle.verify_inclusion(
            index, checkpoint.size, proof["leaf_hash"], proof["proof"], checkpoint.root
        )
    ):
        problems.append(f"the inclusion proof of entry {index} does not reach the signed root")
    return {
        "index": index,
        "leaf": proof["leaf"],
        "leaf_hash": proof["leaf_hash"].hex(),
        "tree_size": proof["tree_size"],
        "proof": [h.hex() for h in proof["proof"]],
        "root": proof["root"].hex(),
        "checkpoint": latest.note,
    }

"""Verification of the live database: the offline checks, plus the book against the log.

The export verifier proves that a sequence of leaves is what was signed. Against the database
we also rebuild every leaf from the transaction and posting rows and compare its hash with the
leaf hash stored when it was sequenced, which names the exact row an edit touched, and check
that every account's balance equals the sum of its postings.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from payments.ledger import log, merkle
from payments.ledger.canonical import leaf_bytes
from payments.ledger.errors import CorruptEntry
from payments.ledger.models import Account, Posting
from payments.ledger.note import Verifier
from payments.ledger.verify import checkpoint_line, entry_line, verify_export


@dataclass(frozen=True)
class AuditResult:
    """Outcome of verifying the database."""

    ok: bool
    size: int
    root: bytes | None
    checkpoints: int
    first_bad_index: int | None = None
    problem: str | None = None

    def describe(self) -> str:
        """Return the one-line summary the CLI prints."""
        if self.ok:
            assert self.root is not None
            return f"OK: {self.size} entries, root {self.root.hex()}, {self.checkpoints} checkpoints verified"
        where = f"entry {self.first_bad_index}: " if self.first_bad_index is not None else ""
        return f"FAILED: {where}{self.problem}"


class _Mismatch(Exception):
    def __init__(self, index: int, problem: str) -> None:
        super().__init__(problem)
        self.index = index
        self.problem = problem


def _lines(session: Session, page: int = 2000) -> Iterator[str]:
    """Yield export lines rebuilt from the book, checking each leaf against its stored hash.

    Lines stop at the latest checkpoint, as an export does; entries after it are still checked
    against their stored hashes.
    """
    checkpoints = [(cp.size, cp.note) for cp in log.list_checkpoints(session, limit=10**9)]
    signed = checkpoints[-1][0] if checkpoints else 0
    cp_pos = 0
    expected = 0
    size = log.current_size(session)
    prev_hashes: list[bytes] = []  # the last two stored leaf hashes, to recognise an insertion
    while True:
        batch = log.entries(session, from_index=expected, limit=page)
        if not batch:
            break
        for e in batch:
            if e.index != expected:
                raise _Mismatch(expected, f"log index {expected} is missing (next stored index is {e.index})")
            if e.index >= size:
                raise _Mismatch(e.index, f"the entry lies beyond the sequenced log size {size}")
            if merkle.leaf_hash(leaf_bytes(e.leaf)) != e.leaf_hash:
                if _shifted(e, prev_hashes):
                    raise _Mismatch(
                        e.index - 1,
                        "an entry was inserted here: the entries after it were moved up by one index",
                    )
                raise _Mismatch(
                    e.index,
                    "the transaction rows no longer produce the leaf hash stored when it "
                    "was sequenced (a posting, account, memo, time or key was altered)",
                )
            prev_hashes = [*prev_hashes[-1:], e.leaf_hash]
            if e.index < signed:
                yield entry_line(e.index, e.leaf)
            while cp_pos < len(checkpoints) and checkpoints[cp_pos][0] == e.index + 1:
                yield checkpoint_line(checkpoints[cp_pos][1])
                cp_pos += 1
            expected += 1
    if expected < size:
        raise _Mismatch(expected, f"the log state records {size} entries but only {expected} are stored")
    if cp_pos < len(checkpoints):
        raise _Mismatch(
            expected, f"a checkpoint covers {checkpoints[cp_pos][0]} entries but the log holds {expected}"
        )


def _shifted(entry: log.EntryView, prev_hashes: list[bytes]) -> bool:
    """Tell whether the entry's stored hash is that of the same rows one index earlier."""
    if entry.index == 0 or len(prev_hashes) < 2 and entry.index > 1:
        return False
    before = prev_hashes[0] if entry.index > 1 else log.GENESIS_PREV
    moved = {**entry.leaf, "index": entry.index - 1, "prev": before.hex()}
    return merkle.leaf_hash(leaf_bytes(moved)) == entry.leaf_hash


def _balance_problems(session: Session) -> list[str]:
    sums = dict(
        session.execute(
            sa.select(Posting.account_id, sa.func.sum(Posting.amount)).group_by(Posting.account_id)
        ).all()
    )
    return [
        f"account {a.code}: balance {a.balance} but its postings sum to {int(sums.get(a.id, 0))}"
        for a in session.scalars(sa.select(Account).order_by(Account.id))
        if a.balance != int(sums.get(a.id, 0))
    ]


def verify_database(session: Session, verifiers: Sequence[Verifier]) -> AuditResult:
    """Verify the log in the database and the book it seals."""
    try:
        result = verify_export(_lines(session), verifiers)
    except _Mismatch as exc:
        return AuditResult(False, log.current_size(session), None, 0, exc.index, exc.problem)
    except CorruptEntry as exc:
        return AuditResult(False, log.current_size(session), None, 0, exc.extra["index"], exc.detail)
    if not result.ok:
        return AuditResult(
            False, result.size, None, result.checkpoints_verified, result.first_bad_index, result.problem
        )
    problems = _balance_problems(session)
    if problems:
        return AuditResult(
            False, result.size, result.root, result.checkpoints_verified, None, "; ".join(problems)
        )
    return AuditResult(True, result.size, result.root, result.checkpoints_verified)

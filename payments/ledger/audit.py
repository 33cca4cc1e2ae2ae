"""Verification of the live database: the offline checks, plus the book against the log.

The export verifier proves that a sequence of leaves is what was signed. Against the database
we also rebuild every leaf from the transaction and posting rows and compare its hash with the
leaf hash stored when it was sequenced, which names the exact row an edit touched, and check
that every account's balance equals the sum of its postings.

It also says what no checkpoint covers yet: entries sequenced after the latest checkpoint, and
transactions committed but not sequenced. Neither is a fault (the sequencer seals them within
moments), but an auditor must know that the verified root does not cover them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from payments.ledger import entries, merkle, tree
from payments.ledger.canonical import GENESIS_PREV_HASH, leaf_bytes
from payments.ledger.errors import CorruptEntry
from payments.ledger.export import interleave
from payments.ledger.models import Account, Pending, Posting
from payments.ledger.note import Verifier
from payments.ledger.verify import verify_export


@dataclass(frozen=True)
class AuditResult:
    """Outcome of verifying the database."""

    ok: bool
    size: int
    root: bytes | None
    checkpoints: int
    first_bad_index: int | None = None
    problem: str | None = None
    unsealed: int = 0
    """Entries sequenced after the latest checkpoint."""
    pending: int = 0
    """Transactions committed but not sequenced yet (at least this many)."""

    def describe(self) -> str:
        """Return the summary the CLI prints: one line, and one more for anything not yet sealed."""
        if self.ok:
            assert self.root is not None
            line = f"OK: {self.size} entries, root {self.root.hex()}, {self.checkpoints} checkpoints verified"
            waiting = self.unsealed + self.pending
            if waiting:
                line += (
                    f"\nnot yet sealed: {waiting} committed "
                    f"{'entry is' if waiting == 1 else 'entries are'} not covered by a signed checkpoint "
                    f"({self.unsealed} sequenced after it, {self.pending} waiting for the sequencer); "
                    "the verified root does not include them"
                )
            return line
        where = f"entry {self.first_bad_index}: " if self.first_bad_index is not None else ""
        return f"FAILED: {where}{self.problem}"


class _Mismatch(Exception):
    def __init__(self, index: int, problem: str) -> None:
        super().__init__(problem)
        self.index = index
        self.problem = problem


def _lines(session: Session) -> Iterator[str]:
    """Yield export lines rebuilt from the book, checking each leaf against its stored hash.

    Lines stop at the latest checkpoint, as an export does; entries after it are still checked
    against their stored hashes.
    """
    checkpoints = [(cp.size, cp.note) for cp in tree.list_checkpoints(session, limit=10**9)]
    signed = checkpoints[-1][0] if checkpoints else 0
    yield from interleave(_checked_entries(session, signed), checkpoints)
    seen = tree.current_size(session)
    if checkpoints and checkpoints[-1][0] > seen:
        raise _Mismatch(seen, f"a checkpoint covers {checkpoints[-1][0]} entries but the log holds {seen}")


def _checked_entries(session: Session, signed: int) -> Iterator[tuple[int, dict[str, Any] | None]]:
    """Yield ``(index, leaf)`` for every stored entry (leaf None past ``signed``), checking each."""
    expected = 0
    size = tree.current_size(session)
    prev_hashes: list[bytes] = []  # the last two stored leaf hashes, to recognise an insertion
    for e in entries.walk(session):
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
        yield e.index, (e.leaf if e.index < signed else None)
        expected += 1
    if expected < size:
        raise _Mismatch(expected, f"the log state records {size} entries but only {expected} are stored")


def _shifted(entry: entries.EntryView, prev_hashes: list[bytes]) -> bool:
    """Tell whether the entry's stored hash is that of the same rows one index earlier."""
    if entry.index == 0 or len(prev_hashes) < 2 and entry.index > 1:
        return False
    before = prev_hashes[0] if entry.index > 1 else GENESIS_PREV_HASH
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
        return AuditResult(False, tree.current_size(session), None, 0, exc.index, exc.problem)
    except CorruptEntry as exc:
        return AuditResult(False, tree.current_size(session), None, 0, exc.extra["index"], exc.detail)
    if not result.ok:
        return AuditResult(
            False, result.size, None, result.checkpoints_verified, result.first_bad_index, result.problem
        )
    problems = _balance_problems(session)
    if problems:
        return AuditResult(
            False, result.size, result.root, result.checkpoints_verified, None, "; ".join(problems)
        )
    return AuditResult(
        True,
        result.size,
        result.root,
        result.checkpoints_verified,
        unsealed=tree.current_size(session) - result.size,
        pending=_pending_count(session),
    )


def _pending_count(session: Session) -> int:
    return int(session.scalar(sa.select(sa.func.count()).select_from(Pending)) or 0)

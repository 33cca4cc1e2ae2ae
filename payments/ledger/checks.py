"""What an auditor asks of the live log in a browser: is the latest checkpoint sound, and does
the log still extend a checkpoint they kept from before?

Both answers come from the same proof functions as the offline verifier (``note`` for the
signature, ``merkle`` for the consistency proof) run on the server, so that the page states
facts the auditor could re-check offline with ``chopay ledger verify``. A failure is one of a
few stable codes, which the page words for people.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from chopay.db import utcnow
from payments.ledger import merkle, tree
from payments.ledger.note import NoteError, Verifier, open_checkpoint

MAX_NOTE_CHARS = 20_000
"""A pasted checkpoint is a few hundred characters; anything far longer is not one."""


@dataclass(frozen=True)
class LatestCheckpoint:
    """The newest checkpoint and what was found when it was checked."""

    size: int
    root: str
    note: str
    created_at: dt.datetime
    age: dt.timedelta
    signed_by: tuple[str, ...]
    signature_ok: bool
    root_ok: bool
    unsealed: int
    """Entries sequenced after this checkpoint, which it does not cover yet."""
    problem: str | None


@dataclass(frozen=True)
class Consistency:
    """The outcome of checking an older checkpoint against the latest one."""

    ok: bool
    code: str
    """``consistent``, or why not: ``malformed``, ``signature``, ``origin``, ``newer``, ``no_checkpoint``,
    ``fork``."""
    detail: str
    old_size: int | None = None
    old_root: str | None = None
    new_size: int | None = None
    new_root: str | None = None


def latest(session: Session, verifiers: Sequence[Verifier], origin: str) -> LatestCheckpoint | None:
    """Return the latest checkpoint with its signature and root checked, or None before the first."""
    cp = tree.latest_checkpoint(session)
    if cp is None:
        return None
    names: tuple[str, ...] = ()
    problem = None
    try:
        parsed, signed = open_checkpoint(cp.note, verifiers, origin=origin)
        names = tuple(signed)
        root_ok = parsed.size == cp.size and parsed.root == cp.root == tree.root_at(session, cp.size)
    except NoteError as exc:
        problem, root_ok = str(exc), False
    return LatestCheckpoint(
        size=cp.size,
        root=base64.b64encode(cp.root).decode(),
        note=cp.note,
        created_at=cp.created_at,
        age=utcnow() - cp.created_at,
        signed_by=names,
        signature_ok=bool(names),
        root_ok=root_ok,
        unsealed=max(tree.current_size(session) - cp.size, 0),
        problem=problem,
    )


def consistency(session: Session, verifiers: Sequence[Verifier], origin: str, note: str) -> Consistency:
    """Check that the log extends ``note``, a signed checkpoint kept from before."""
    text = note.replace("\r\n", "\n").strip("\n") + "\n"
    if len(text) > MAX_NOTE_CHARS:
        return Consistency(False, "malformed", f"The text is longer than {MAX_NOTE_CHARS} characters.")
    try:
        old, _ = open_checkpoint(text, verifiers)
    except NoteError as exc:
        message = str(exc)
        refused = "does not verify" in message or "no signature by a trusted key" in message
        code = "signature" if refused else "malformed"
        return Consistency(False, code, message)
    old_root = base64.b64encode(old.root).decode()
    if old.origin != origin:
        return Consistency(
            False, "origin", f"The checkpoint is of {old.origin!r}, not {origin!r}.", old.size, old_root
        )
    cp = tree.latest_checkpoint(session)
    if cp is None:
        return Consistency(False, "no_checkpoint", "The log has no checkpoint yet.", old.size, old_root)
    new_root = base64.b64encode(cp.root).decode()
    if old.size > cp.size:
        return Consistency(
            False,
            "newer",
            f"The pasted checkpoint (size {old.size}) is ahead of the latest one (size {cp.size}).",
            old.size,
            old_root,
            cp.size,
            new_root,
        )
    if old.size == 0:
        ok = True
    elif old.size == cp.size:
        ok = old.root == cp.root
    else:
        proof = tree.consistency(session, old.size, cp.size)
        ok = merkle.verify_consistency(old.size, cp.size, old.root, cp.root, proof["proof"])
    detail = (
        f"The log of size {cp.size} extends the checkpoint of size {old.size}."
        if ok
        else f"The log of size {cp.size} does not extend the checkpoint of size {old.size}: history changed."
    )
    return Consistency(ok, "consistent" if ok else "fork", detail, old.size, old_root, cp.size, new_root)

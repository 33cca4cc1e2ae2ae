"""Offline verification of a ledger export, with nothing but the log's public keys.

An export is JSON Lines in the format of :mod:`payments.ledger.export`, from index 0. The last
line of an export is a checkpoint covering every entry: the exporter stops at the latest signed
checkpoint, because an unsigned entry proves nothing to an auditor. Exports made
with ``--from-index N`` for ``N > 0`` cannot be verified offline (their first ``prev`` link and
the tree below ``N`` are unknown); offline verification needs an export from index 0.

:func:`verify_export` checks, and ``python -m payments.ledger.verify`` prints:

* every line parses, every entry's line index and leaf index equal its position (contiguity);
* every leaf is well-formed and balanced (:func:`payments.ledger.canonical.check_leaf`);
* every ``prev`` is the leaf hash of the entry before it (64 zeros for entry 0);
* every checkpoint is signed by a trusted key (optionally with the expected origin), sits at
  its size, and its root equals the root recomputed from the leaves. All roots come from one
  sequence of leaves, so the checkpoints are consistent with each other by construction;
* the export reaches its last checkpoint, and, given a trusted checkpoint (one the auditor
  obtained earlier), the recomputed root at that size equals the trusted root; a trusted size
  beyond the export is a truncation.

The leaf hash is SHA-256(0x00 || canonical leaf bytes). When a line has the writer's layout,
the bytes between ``"leaf":`` and the final ``}`` are hashed as they are, without parsing and
re-encoding: the log only ever signs canonical bytes, so bytes that are not canonical cannot
reproduce a signed root. Any other layout is parsed and re-encoded canonically. For the same
reason the verifier judges what a leaf says (its fields, types, postings and links), not the
hygiene of its text: invalid UTF-8 or a raw control character inside a string would have to be
in the bytes the log signed, which its canonical encoder never writes, so neither pass spends
time re-checking them (strings are read leniently, undecodable bytes kept as escapes).

Failures name the first bad entry index. Edits that leave the ``prev`` chain broken are pinned
to one entry: when entry ``k``'s ``prev`` is not the hash of entry ``k-1``, entry ``k-1`` is to
blame if entry ``k+1`` links correctly to ``k`` (``k-1`` was edited) or if ``k`` links to
``k-2`` (``k-1`` was inserted); otherwise entry ``k`` is (it was replaced, moved, or follows a
deletion). A duplicate or out-of-order index names the lower of the expected and found index.
A forger who rewrites every later ``prev`` as well leaves only the signed roots broken; then
the report names the first entry after the last checkpoint that still verifies, the closest
any verifier can get.

Speed: a line in the writer's layout with a flat metadata object is checked by one regular
expression and hashed as it is, and the tree is folded from perfect subtrees computed next to
the parsing, so chunks of the file go to a pool of processes and the parent only joins
O(log n) nodes per chunk. Any anomaly drops to a single sequential pass that produces the exact
diagnosis.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import multiprocessing
import os
import re
import sys
import threading
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from payments.ledger.canonical import GENESIS_PREV, canonical_json, check_leaf
from payments.ledger.merkle import EMPTY_ROOT, CompactRange, range_nodes
from payments.ledger.note import Checkpoint, NoteError, Verifier, open_checkpoint

__all__ = ["VerifyResult", "main", "verify_export"]

_CHUNK_BYTES = 4 << 20
_POOL_MIN_BYTES = 16 << 20
_GENESIS = GENESIS_PREV.encode()

_sha256 = hashlib.sha256


@dataclass(frozen=True)
class VerifyResult:
    """Outcome of verifying an export.

    ``size`` and ``root`` describe the largest verified checkpoint below the first problem (the
    whole export when ``ok``); ``root`` is ``None`` when nothing was verified.
    """

    ok: bool
    size: int
    root: bytes | None
    checkpoints_verified: int
    first_bad_index: int | None = None
    problem: str | None = None

    def report(self) -> str:
        """Return the human-readable report the command line prints."""
        if self.ok and self.root is not None:
            return (
                f"OK: verified {self.size} entries and {self.checkpoints_verified} checkpoints\n"
                f"size: {self.size}\nroot (hex): {self.root.hex()}\n"
                f"root (base64): {base64.b64encode(self.root).decode()}"
            )
        where = "export" if self.first_bad_index is None else f"entry {self.first_bad_index}"
        lines = [f"{where}: {self.problem}"]
        if self.root is not None:
            lines.append(f"verified before the problem: size {self.size}, root {self.root.hex()}")
        return "\n".join(lines)


# --- parsing one line -------------------------------------------------------------------------

_S = rb'[^"]'
_VALUE = rb'(?:"' + _S + rb'*+"|-?(?:0|[1-9][0-9]*+)|true|false|null)'
_MEMBER = rb'"' + _S + rb'*+":' + _VALUE
_POSTING = rb'\{"account":"' + _S + rb'++","amount":'
_AMOUNT = rb"-?[1-9][0-9]{0,17}"
# The writer's layout of a leaf with two or more postings and a flat metadata object, for a line
# without backslashes: then every '"' is a string delimiter, so "anything but a quote" is exactly
# a JSON string without escapes (and [^"] is the regular expression engine's fastest loop).
# Everything it accepts passes check_leaf except a calendar-invalid date, the sum of the
# postings (two postings balance when their signs differ and their digits agree), and the index
# 0 genesis link, which are checked beside it.
_FAST_ENTRY = re.compile(
    rb'\{"type":"entry","index":(0|[1-9][0-9]{0,17}),"leaf":(\{"index":\1,'
    rb'"key":"' + _S + rb'++","kind":"' + _S + rb'++","memo":"' + _S + rb'*+",'
    rb'"metadata":\{(?:' + _MEMBER + rb"(?:," + _MEMBER + rb")*+)?\},"
    rb'"occurred_at":"([0-9]{4}-[0-9]{2}-[0-9]{2})T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]\.[0-9]{6}Z",'
    rb'"postings":\[' + _POSTING + rb"(-?)([1-9][0-9]{0,17})\}," + _POSTING + rb"(-?)([1-9][0-9]{0,17})\}"
    rb"((?:," + _POSTING + _AMOUNT + rb"\})*+)\],"
    rb'"prev":"([0-9a-f]{64})","reverses":(?:null|"' + _S + rb'++"),"tx":"' + _S + rb'++","v":1\})\}'
)
_AMOUNTS = re.compile(rb'"amount":(-?[0-9]+)')
_LAYOUT = re.compile(rb'\{"type":"entry","index":(?:0|[1-9][0-9]*),"leaf":(\{.*\})\}', re.DOTALL)


@dataclass
class _Entry:
    index: int | None
    leaf_hash: bytes | None
    prev: bytes | None  # hex digits, as written
    problems: list[str]


def _parse_line(line: bytes) -> _Entry | str | None:
    """Parse one line: an entry, a checkpoint note (str), or None for a blank line."""
    if not line.strip():
        return None
    try:
        # Text hygiene is pinned by the signed root, not re-judged: see the module docstring.
        obj = json.loads(line.decode("utf-8", "surrogateescape"), strict=False)
    except (ValueError, RecursionError):
        return _Entry(None, None, None, ["line is not valid JSON (a corrupt or truncated line)"])
    if not isinstance(obj, dict):
        return _Entry(None, None, None, ["line is not a JSON object"])
    kind = obj.get("type")
    if kind == "checkpoint":
        note = obj.get("note")
        if obj.keys() != {"type", "note"} or not isinstance(note, str):
            return _Entry(None, None, None, ["checkpoint line must hold exactly a type and a string note"])
        return note
    if kind != "entry" or obj.keys() != {"type", "index", "leaf"}:
        return _Entry(None, None, None, ["line is neither an entry {type, index, leaf} nor a checkpoint"])
    index = obj["index"]
    if type(index) is not int or index < 0:
        return _Entry(None, None, None, [f"line index {index!r} is not a non-negative integer"])
    leaf = obj["leaf"]
    problems = check_leaf(leaf)
    if isinstance(leaf, dict) and leaf.get("index") != index:
        problems.insert(0, f"leaf index {leaf.get('index')!r} differs from line index {index}")
    layout = _LAYOUT.fullmatch(line.rstrip(b"\n"))
    digest: bytes | None = None
    if layout is not None:
        digest = _sha256(b"\x00" + layout.group(1)).digest()
    else:
        try:
            digest = _sha256(b"\x00" + canonical_json(leaf)).digest()
        except ValueError as exc:
            problems.append(f"leaf has no canonical form: {exc}")
    prev = leaf.get("prev") if isinstance(leaf, dict) else None
    prev_hex = prev.encode() if isinstance(prev, str) and len(prev) == 64 and prev.isascii() else None
    return _Entry(index, digest, prev_hex, problems)


# --- fast path: chunks ------------------------------------------------------------------------


@dataclass
class _Chunk:
    ok: bool
    first: int = 0
    count: int = 0
    first_prev: bytes = b""
    last_hash: bytes = b""
    nodes: tuple[tuple[int, bytes], ...] = ()
    # (offset in entries, note or None for the trusted size, nodes tiling [first, first + offset))
    marks: tuple[tuple[int, str | None, tuple[tuple[int, bytes], ...]], ...] = ()


_valid_dates: set[bytes] = set()


def _valid_date(day: bytes) -> bool:
    if day in _valid_dates:
        return True
    try:
        date.fromisoformat(day.decode())
    except ValueError:
        return False
    _valid_dates.add(day)
    return True


def _levels(first: int, hashes: list[bytes]) -> list[tuple[int, list[bytes]]]:
    """Return, per level, the index of its first node and every perfect node inside the chunk."""
    levels = [(first, hashes)]
    start, current = first, hashes
    sha = _sha256
    while len(current) >= 2:
        odd = start & 1
        current = [
            sha(b"\x01" + current[i] + current[i + 1]).digest() for i in range(odd, len(current) - 1, 2)
        ]
        start = (start + odd) >> 1
        levels.append((start, current))
    return levels


def _tile(levels: list[tuple[int, list[bytes]]], begin: int, end: int) -> tuple[tuple[int, bytes], ...]:
    out = []
    for level, index in range_nodes(begin, end):
        start, nodes = levels[level]
        out.append((level, nodes[index - start]))
    return tuple(out)


def _scan_lines(lines: Iterable[bytes], trusted_size: int | None) -> _Chunk:
    """Check a run of lines without diagnosis: ``ok`` is False at the first anomaly."""
    indexes: list[bytes] = []
    hashes: list[bytes] = []
    prevs: list[bytes] = []
    notes: list[tuple[int, str]] = []
    fast = _FAST_ENTRY.fullmatch
    sha = _sha256
    dates = _valid_dates
    add_index, add_hash, add_prev = indexes.append, hashes.append, prevs.append
    for line in lines:
        m = fast(line)
        if m is not None and b"\\" not in line:
            index, raw, day, sign1, digits1, sign2, digits2, rest, prev = m.groups()
            if rest or sign1 == sign2 or digits1 != digits2:
                total = (
                    sum(int(a) for a in _AMOUNTS.findall(rest)) + int(sign1 + digits1) + int(sign2 + digits2)
                )
                if total != 0:
                    return _Chunk(False)
            if day not in dates and not _valid_date(day):
                return _Chunk(False)
            add_index(index)
            add_hash(sha(b"\x00" + raw).digest())
            add_prev(prev)
            continue
        parsed = _parse_line(line)
        if parsed is None:
            continue
        if isinstance(parsed, str):
            notes.append((len(hashes), parsed))
            continue
        if parsed.problems or parsed.index is None or parsed.leaf_hash is None or parsed.prev is None:
            return _Chunk(False)
        add_index(str(parsed.index).encode())
        add_hash(parsed.leaf_hash)
        add_prev(parsed.prev)
    count = len(hashes)
    first = int(indexes[0]) if indexes else 0
    # Whole-chunk comparisons check contiguity and every link but the first, which is the caller's.
    if b",".join(indexes) != ",".join(map(str, range(first, first + count))).encode():
        return _Chunk(False)
    if count > 1 and b"".join(prevs[1:]) != b"".join(hashes[:-1]).hex().encode():
        return _Chunk(False)
    if first == 0 and count and prevs[0] != _GENESIS:
        return _Chunk(False)
    levels = _levels(first, hashes)
    marks: list[tuple[int, str | None, tuple[tuple[int, bytes], ...]]] = [
        (offset, note, _tile(levels, first, first + offset)) for offset, note in notes
    ]
    if trusted_size is not None and count and first <= trusted_size <= first + count:
        marks.append((trusted_size - first, None, _tile(levels, first, trusted_size)))
    return _Chunk(
        True,
        first,
        count,
        prevs[0] if prevs else b"",
        hashes[-1] if hashes else b"",
        _tile(levels, first, first + count),
        tuple(marks),
    )


def _scan_range(task: tuple[str, int, int, int | None]) -> _Chunk:
    path, begin, end, trusted_size = task
    with open(path, "rb") as f:
        f.seek(begin)
        data = f.read(end - begin)
    lines = data.split(b"\n")
    if lines and not lines[-1]:
        lines.pop()
    return _scan_lines(lines, trusted_size)


def _ranges(path: str, chunk_bytes: int) -> list[tuple[int, int]]:
    size = os.path.getsize(path)
    bounds = [0]
    with open(path, "rb") as f:
        while bounds[-1] + chunk_bytes < size:
            f.seek(bounds[-1] + chunk_bytes)
            f.readline()
            position = f.tell()
            if position >= size:
                break
            bounds.append(position)
    bounds.append(size)
    return list(zip(bounds[:-1], bounds[1:], strict=False))


class _Anomaly(Exception):
    """Raised inside the fast path to hand over to the diagnosing pass."""


def _fast(
    chunks: Iterable[_Chunk],
    verifiers: Sequence[Verifier],
    trusted: Checkpoint | None,
    origin: str | None,
) -> VerifyResult:
    tree = CompactRange.empty()
    last_hash_hex = _GENESIS
    checkpoints = 0
    covered = -1
    trusted_done = trusted is None or trusted.size == 0
    if trusted is not None and trusted.size == 0 and trusted.root != EMPTY_ROOT:
        raise _Anomaly
    for chunk in chunks:
        if not chunk.ok:
            raise _Anomaly
        if chunk.count and (chunk.first != tree.size or chunk.first_prev != last_hash_hex):
            raise _Anomaly
        for _offset, note, partial in chunk.marks:
            at = tree.copy()
            for level, h in partial:
                at.append_subtree(level, h)
            if note is None:
                if trusted is None or at.root() != trusted.root:
                    raise _Anomaly
                trusted_done = True
                continue
            try:
                checkpoint, _ = open_checkpoint(note, verifiers, origin=origin)
            except NoteError:
                raise _Anomaly from None
            if checkpoint.size != at.size or checkpoint.root != at.root():
                raise _Anomaly
            checkpoints += 1
            covered = at.size
        for level, h in chunk.nodes:
            tree.append_subtree(level, h)
        if chunk.count:
            last_hash_hex = chunk.last_hash.hex().encode()
    if covered != tree.size or not trusted_done:
        raise _Anomaly
    return VerifyResult(True, tree.size, tree.root(), checkpoints)


def _chunked(lines: Iterable[bytes], size: int = 65536) -> Iterator[list[bytes]]:
    batch: list[bytes] = []
    for line in lines:
        batch.append(line)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


# --- exact pass: diagnosis --------------------------------------------------------------------


class _Diagnosis:
    """One sequential pass that finds the first bad entry index and says what is wrong."""

    def __init__(self, verifiers: Sequence[Verifier], trusted: Checkpoint | None, origin: str | None) -> None:
        self.verifiers = verifiers
        self.trusted = trusted
        self.origin = origin
        self.tree = CompactRange.empty()
        self.recent: list[bytes] = []  # leaf hashes of the last three entries
        self.pending: int | None = None  # k: entry k's prev is wrong, blame waits for entry k+1
        self.chain_broken = False
        self.blames: list[tuple[int, str]] = []
        self.unsealed: tuple[int, int, str] | None = None  # (from index, size, problem)
        self.good: list[tuple[int, bytes]] = []
        self.last_checkpoint = 0
        self.seen_checkpoint = False
        self.lines = 0
        self.horizon: int | None = None
        self.stopped = False
        if trusted is not None and trusted.size == 0:
            self._check_trusted()

    # -- bookkeeping

    def _blame(self, index: int, problem: str) -> None:
        self.blames.append((index, problem))
        self._extend_horizon(index + 2)

    def _extend_horizon(self, until: int) -> None:
        if self.horizon is None:
            self.horizon = until

    @property
    def _sealed(self) -> int:
        """Return the size of the last checkpoint that verified."""
        return self.good[-1][0] if self.good else 0

    def _unseal(self, size: int, problem: str) -> None:
        if self.unsealed is None:
            self.unsealed = (self._sealed, size, problem)
            self._extend_horizon(size + 2)

    def done(self) -> bool:
        return self.stopped or (self.horizon is not None and self.tree.size > self.horizon)

    def _check_trusted(self) -> None:
        assert self.trusted is not None
        if self.tree.root() != self.trusted.root:
            self._unseal(
                self.trusted.size,
                f"one of entries {self._sealed}..{self.trusted.size - 1} differs: the root at size "
                f"{self.trusted.size} differs from the trusted checkpoint",
            )

    # -- lines

    def feed(self, line: bytes) -> None:
        self.lines += 1
        parsed = _parse_line(line)
        if parsed is None:
            return
        if isinstance(parsed, str):
            self._checkpoint(parsed)
        else:
            self._entry(parsed)

    def _entry(self, entry: _Entry) -> None:
        k = self.tree.size
        if entry.index is None:
            self._resolve_pending(None)
            self._blame(k, f"line {self.lines}: {entry.problems[0]}")
            self.stopped = True
            return
        if entry.index != k:
            self._resolve_pending(None)
            if entry.index > k:
                self._blame(k, f"missing: line {self.lines} holds entry {entry.index} in its place")
            else:
                self._blame(
                    entry.index,
                    f"appears again at line {self.lines}, after entry {k - 1} "
                    "(a duplicated, inserted or reordered entry)",
                )
            self.stopped = True
            return
        if entry.problems:
            self._blame(k, "; ".join(entry.problems))
        expected = _GENESIS if k == 0 else self.recent[-1].hex().encode()
        mismatch = None if entry.prev is None else entry.prev != expected
        self._resolve_pending(mismatch)
        # Only the first broken link matters: a later one cannot blame an earlier entry.
        if mismatch and not self.chain_broken:
            self.chain_broken = True
            if k >= 2 and entry.prev == self.recent[-2].hex().encode():
                self._blame(k - 1, f"was inserted: entry {k} links to entry {k - 2}")
            elif k > 0:
                self.pending = k
            # Entry 0 has no predecessor to blame: check_leaf has blamed its genesis link.
        digest = entry.leaf_hash if entry.leaf_hash is not None else bytes(32)
        self.tree.append(digest)
        self.recent = [*self.recent[-2:], digest]
        if self.trusted is not None and self.tree.size == self.trusted.size:
            self._check_trusted()

    def _resolve_pending(self, next_mismatch: bool | None) -> None:
        k = self.pending
        if k is None:
            return
        self.pending = None
        if next_mismatch is False:
            self._blame(k - 1, f"was altered: its hash is not the prev link of entry {k}")
        else:
            self._blame(k, f"does not link to entry {k - 1}: it was replaced, moved or follows a gap")

    def _checkpoint(self, note: str) -> None:
        size = self.tree.size
        self.seen_checkpoint = True
        self.last_checkpoint = size
        try:
            checkpoint, _ = open_checkpoint(note, self.verifiers, origin=self.origin)
        except NoteError as exc:
            self._unseal(size, f"the checkpoint on line {self.lines} (size {size}) is not trusted: {exc}")
            return
        if checkpoint.size != size:
            self._unseal(
                size,
                f"the checkpoint on line {self.lines} is for size {checkpoint.size} "
                f"but follows {size} entries",
            )
            return
        if checkpoint.root != self.tree.root():
            self._unseal(
                size,
                f"one of entries {self._sealed}..{size - 1} was altered: "
                f"the entries do not reproduce the signed root at size {size}",
            )
            return
        self.good.append((size, checkpoint.root))

    # -- verdict

    def result(self) -> VerifyResult:
        self._resolve_pending(None)
        size = self.tree.size
        if not self.stopped and not self.done():
            if size > self.last_checkpoint:
                start = self.last_checkpoint
                self._blame(
                    size,
                    f"missing: the export ends without a checkpoint over entries {start}..{size - 1}"
                    " (truncated)",
                )
            if self.trusted is not None and self.trusted.size > size:
                self._blame(
                    size,
                    f"missing: the export ends at {size} entries but the trusted checkpoint has size "
                    f"{self.trusted.size} (truncated)",
                )
        first: tuple[int, str] | None = min(self.blames, default=None, key=lambda b: b[0])
        if self.unsealed is not None and (first is None or first[0] >= self.unsealed[1]):
            first = (self.unsealed[0], self.unsealed[2])
        if first is None:
            if not self.seen_checkpoint:
                return VerifyResult(False, 0, None, 0, None, "the export is empty")
            return VerifyResult(True, size, self.tree.root(), len(self.good))
        index, problem = first
        verified = [g for g in self.good if g[0] <= index]
        if verified:
            return VerifyResult(False, verified[-1][0], verified[-1][1], len(verified), index, problem)
        return VerifyResult(False, 0, None, 0, index, problem)


def _diagnose(
    lines: Iterable[bytes], verifiers: Sequence[Verifier], trusted: Checkpoint | None, origin: str | None
) -> VerifyResult:
    diagnosis = _Diagnosis(verifiers, trusted, origin)
    for line in lines:
        diagnosis.feed(line)
        if diagnosis.done():
            break
    return diagnosis.result()


# --- entry points -----------------------------------------------------------------------------


def _pool_context() -> multiprocessing.context.BaseContext:
    # Forking is cheapest and needs no import guard in the caller's script, but it is only safe
    # from a single-threaded process; anything else gets fresh interpreters.
    if sys.platform.startswith("linux") and threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


def _fast_pooled(
    tasks: list[tuple[str, int, int, int | None]],
    workers: int,
    verifiers: Sequence[Verifier],
    trusted: Checkpoint | None,
    origin: str | None,
) -> VerifyResult:
    with ProcessPoolExecutor(workers, mp_context=_pool_context()) as pool:
        try:
            return _fast(pool.map(_scan_range, tasks), verifiers, trusted, origin)
        finally:
            pool.shutdown(cancel_futures=True)


def _file_lines(path: str) -> Iterator[bytes]:
    with open(path, "rb") as f:
        for line in f:
            yield line[:-1] if line.endswith(b"\n") else line


def verify_export(
    source: str | os.PathLike[str] | Iterable[str | bytes],
    verifiers: Sequence[Verifier],
    trusted_checkpoint: str | None = None,
    *,
    origin: str | None = None,
    workers: int | None = None,
) -> VerifyResult:
    """Verify an export file (or its lines) against trusted keys and an optional trusted note."""
    verifiers = list(verifiers)
    if not verifiers:
        raise ValueError("at least one trusted verifier key is needed")
    trusted: Checkpoint | None = None
    if trusted_checkpoint is not None:
        try:
            trusted, _ = open_checkpoint(trusted_checkpoint, verifiers, origin=origin)
        except NoteError as exc:
            return VerifyResult(False, 0, None, 0, None, f"trusted checkpoint: {exc}")
    trusted_size = None if trusted is None else trusted.size

    if isinstance(source, str | os.PathLike):
        path = os.fspath(source)
        tasks = [(path, begin, end, trusted_size) for begin, end in _ranges(path, _CHUNK_BYTES)]
        count = min((os.cpu_count() or 1) if workers is None else workers, len(tasks))
        try:
            if count > 1 and os.path.getsize(path) >= _POOL_MIN_BYTES:
                try:
                    return _fast_pooled(tasks, count, verifiers, trusted, origin)
                except BrokenProcessPool:
                    pass  # a worker could not start or died: do the work here instead
            return _fast(map(_scan_range, tasks), verifiers, trusted, origin)
        except _Anomaly:
            return _diagnose(_file_lines(path), verifiers, trusted, origin)

    lines = [line.encode("utf-8") if isinstance(line, str) else line for line in source]
    lines = [line.rstrip(b"\n") for line in lines]
    try:
        return _fast(
            (_scan_lines(batch, trusted_size) for batch in _chunked(lines)), verifiers, trusted, origin
        )
    except _Anomaly:
        return _diagnose(lines, verifiers, trusted, origin)


def main(argv: Sequence[str] | None = None) -> int:
    """Verify an export from the command line; exit 0 when it verifies, 1 when it does not."""
    parser = argparse.ArgumentParser(
        prog="python -m payments.ledger.verify",
        description="Verify a chopay ledger export offline against the log's public keys.",
    )
    parser.add_argument("export", type=Path, help="the JSON Lines export (from index 0)")
    parser.add_argument(
        "--key", action="append", required=True, metavar="VKEY", help="trusted verifier key (repeatable)"
    )
    parser.add_argument("--trusted-checkpoint", type=Path, metavar="NOTEFILE", help="a checkpoint you trust")
    parser.add_argument("--origin", help="require every checkpoint to carry this origin")
    parser.add_argument("--workers", type=int, help="processes to use (default: one per CPU)")
    args = parser.parse_args(argv)
    try:
        verifiers = [Verifier.from_vkey(key) for key in args.key]
    except NoteError as exc:
        parser.error(f"--key: {exc}")
    trusted = None
    if args.trusted_checkpoint is not None:
        trusted = args.trusted_checkpoint.read_text(encoding="utf-8")
    if not args.export.is_file():
        parser.error(f"{args.export}: no such file")
    result = verify_export(args.export, verifiers, trusted, origin=args.origin, workers=args.workers)
    print(result.report())
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())

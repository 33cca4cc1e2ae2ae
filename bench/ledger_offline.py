"""Offline ledger verification and Merkle tree speed, without a database.

``measure_offline_verify`` writes a signed export of ``n`` two-posting entries (Vietnamese
memos, a checkpoint every 1,000 entries, the way the sequencer seals a busy second) to a
temporary file and times :func:`payments.ledger.verify.verify_export` on it; the issue's target
is 200,000 entries/s. ``measure_tree`` times leaf hashing plus :class:`CompactRange` appends, the
pure part of the sequencer.

Run ``.venv/bin/python bench/ledger_offline.py [N]`` to print both as JSON.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from payments.ledger.canonical import GENESIS_PREV, canonical_json, check_leaf
from payments.ledger.export import checkpoint_line
from payments.ledger.merkle import CompactRange, leaf_hash
from payments.ledger.note import Checkpoint, Signer, sign_checkpoint
from payments.ledger.verify import verify_export

TARGET_ENTRIES_PER_SECOND = 200_000
ORIGIN = "bench.chopay.test/ledger"
CHECKPOINT_EVERY = 1_000

# The canonical bytes of one leaf with its keys in sorted order; checked against canonical_json.
_LEAF = (
    '{{"index":{i},"key":"payout:PB-2026-11:{i:09d}","kind":"payout",'
    '"memo":"Trợ cấp xã hội tháng 11/2026 — chi trả {i}",'
    '"metadata":{{"batch":"PB-2026-11-{b:05d}","item":"PI-{i:09d}"}},'
    '"occurred_at":"{t}","postings":[{{"account":"program:TCXH:budget","amount":-{a}}},'
    '{{"account":"payouts:clearing","amount":{a}}}],"prev":"{p}","reverses":null,'
    '"tx":"TX-{i:012d}","v":1}}'
)


def _leaf(i: int, prev: str, moment: str) -> bytes:
    return _LEAF.format(i=i, b=i // 1000, t=moment, a=150_000 + i % 977, p=prev).encode()


def write_export(path: Path, n: int, signer: Signer, every: int = CHECKPOINT_EVERY) -> int:
    """Write a signed export of ``n`` entries to ``path``; return the number of checkpoints."""
    start = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)
    tree = CompactRange.empty()
    prev = GENESIS_PREV
    checkpoints = 0
    with path.open("wb") as out:
        buffer: list[bytes] = []
        for i in range(n):
            if i % 1000 == 0:
                second = (start + timedelta(seconds=i // 1000)).strftime("%Y-%m-%dT%H:%M:%S")
            moment = f"{second}.{(i % 1000) * 997 % 1_000_000:06d}Z"
            leaf = _leaf(i, prev, moment)
            if i < 3:
                parsed = json.loads(leaf)
                assert canonical_json(parsed) == leaf, "the template drifted from canonical JSON"
                assert not check_leaf(parsed), check_leaf(parsed)
            h = leaf_hash(leaf)
            prev = h.hex()
            tree.append(h)
            buffer.append(b'{"type":"entry","index":%d,"leaf":%s}\n' % (i, leaf))
            if tree.size % every == 0 or tree.size == n:
                note = sign_checkpoint(Checkpoint(ORIGIN, tree.size, tree.root()), [signer])
                buffer.append(checkpoint_line(note).encode())
                checkpoints += 1
            if len(buffer) >= 8192:
                out.write(b"".join(buffer))
                buffer.clear()
        out.write(b"".join(buffer))
        # Finish the write-back now, so it does not compete with the verification being timed.
        out.flush()
        os.fsync(out.fileno())
    return checkpoints


def _machine() -> dict[str, Any]:
    # The same code runs at different speeds on a busy or a quiet host: record how busy it was
    # and how fast one core hashes a leaf, so figures from different runs can be compared.
    leaf = _leaf(0, GENESIS_PREV, "2026-11-26T08:00:00.000000Z")
    began = time.perf_counter()
    for _ in range(100_000):
        leaf_hash(leaf)
    return {
        "cpus": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "single_core_leaf_hashes_per_second": round(100_000 / (time.perf_counter() - began)),
    }


def measure_offline_verify(n: int = 1_000_000, workers: int | None = None) -> dict[str, Any]:
    """Time offline verification of a synthetic signed export of ``n`` entries."""
    signer = Signer.generate(ORIGIN)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "export.jsonl"
        began = time.perf_counter()
        checkpoints = write_export(path, n, signer)
        written = time.perf_counter() - began
        machine = _machine()
        began = time.perf_counter()
        result = verify_export(path, [signer.verifier], workers=workers)
        seconds = time.perf_counter() - began
        size = path.stat().st_size
    if not result.ok or result.size != n:
        raise RuntimeError(f"the synthetic export did not verify: {result}")
    rate = n / seconds
    return {
        "measure": "offline verify of a signed export",
        "entries": n,
        "checkpoints": checkpoints,
        "export_bytes": size,
        "seconds": round(seconds, 3),
        "entries_per_second": round(rate),
        "target_entries_per_second": TARGET_ENTRIES_PER_SECOND,
        "pass": rate >= TARGET_ENTRIES_PER_SECOND,
        "export_write_seconds": round(written, 3),
        "machine": machine,
    }


def measure_tree(n: int = 1_000_000) -> dict[str, Any]:
    """Time leaf hashing plus CompactRange appends over ``n`` synthetic leaves."""
    leaves = [_leaf(i, GENESIS_PREV, "2026-11-26T08:00:00.000000Z") for i in range(min(n, 4096))]
    tree = CompactRange.empty()
    nodes = 0
    began = time.perf_counter()
    for i in range(n):
        nodes += len(tree.append(leaf_hash(leaves[i % len(leaves)])))
    root = tree.root()
    seconds = time.perf_counter() - began
    return {
        "measure": "leaf hashing and CompactRange append",
        "leaves": n,
        "leaf_bytes": len(leaves[0]),
        "nodes_completed": nodes,
        "seconds": round(seconds, 3),
        "leaves_per_second": round(n / seconds),
        "root": root.hex(),
    }


def main(argv: list[str]) -> int:
    """Print both measurements as JSON; exit 1 when offline verification misses its target."""
    n = int(argv[0]) if argv else 1_000_000
    verify_figures = measure_offline_verify(n)
    report = {"offline_verify": verify_figures, "tree": measure_tree(n)}
    print(json.dumps(report, indent=2))
    return 0 if verify_figures["pass"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

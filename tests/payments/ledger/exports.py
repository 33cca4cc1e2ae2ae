"""Synthetic leaves and signed exports for the pure ledger tests, built with the ledger's own writers."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from payments.ledger.canonical import GENESIS_PREV, build_leaf, leaf_bytes
from payments.ledger.export import checkpoint_line, entry_line
from payments.ledger.merkle import CompactRange, leaf_hash
from payments.ledger.note import Checkpoint, Signer, sign_checkpoint

ORIGIN = "ledger.chopay.test/log"
START = datetime(2026, 11, 26, 22, 54, 22, 123456, tzinfo=UTC)

Leaf = dict[str, Any]


def make_leaves(n: int) -> list[Leaf]:
    """Build ``n`` chained, balanced leaves with the variety real books have."""
    leaves: list[Leaf] = []
    prev = GENESIS_PREV
    for i in range(n):
        amount = 10_000 + 137 * i
        postings: list[tuple[str, int]] = [("program:TCXH:budget", -amount), ("payouts:clearing", amount)]
        metadata: dict[str, Any] = {"batch": f"PB-2026-11-{i // 10:04d}", "payout_ref": f"PI-{i:06d}"}
        memo = f"payout {i}"
        if i % 5 == 0:
            memo = f"Trợ cấp xã hội tháng 11/2026 — đợt {i}"
        if i % 7 == 3:
            memo = 'memo with "quotes" and a \\ backslash'
        if i % 11 == 4:
            postings = [
                ("bank:settlement", -amount),
                ("fees:income", 1_000),
                ("payouts:clearing", amount - 1_000),
            ]
        if i % 13 == 5:
            # Nested metadata, as leaves may hold from before the allow-list: still verifiable.
            metadata = {"refs": {"intent": f"INT-{i}", "tags": ["a", 1, True, None]}}
        leaf = build_leaf(
            index=i,
            prev=prev,
            tx=f"TX-{i:08d}",
            key=f"key-{i}",
            kind="payout" if i % 3 else "receipt",
            memo=memo,
            occurred_at=START + timedelta(seconds=i, microseconds=i),
            postings=postings,
            metadata=metadata,
            reverses=f"TX-{i - 1:08d}" if i % 17 == 9 else None,
        )
        leaves.append(leaf)
        prev = leaf_hash(leaf_bytes(leaf)).hex()
    return leaves


def export_lines(
    leaves: Sequence[Leaf],
    signers: Sequence[Signer],
    *,
    every: int = 7,
    origin: str = ORIGIN,
    sizes: Sequence[int] | None = None,
) -> list[str]:
    """Write an export: entries in order, a signed checkpoint after every ``every`` and at the end."""
    wanted = set(sizes) if sizes is not None else {s for s in range(every, len(leaves) + 1, every)}
    wanted.add(len(leaves))
    tree = CompactRange.empty()
    lines: list[str] = []
    if 0 in wanted:
        lines.append(checkpoint_line(sign_checkpoint(Checkpoint(origin, 0, tree.root()), signers)))
    for leaf in leaves:
        lines.append(entry_line(leaf["index"], leaf))
        tree.append(leaf_hash(leaf_bytes(leaf)))
        if tree.size in wanted:
            lines.append(
                checkpoint_line(sign_checkpoint(Checkpoint(origin, tree.size, tree.root()), signers))
            )
    return lines


def checkpoint_note(
    leaves: Sequence[Leaf], size: int, signers: Sequence[Signer], origin: str = ORIGIN
) -> str:
    """Return a signed checkpoint note for the first ``size`` leaves."""
    tree = CompactRange.empty()
    for leaf in leaves[:size]:
        tree.append(leaf_hash(leaf_bytes(leaf)))
    return sign_checkpoint(Checkpoint(origin, size, tree.root()), signers)

"""RFC 9162 Merkle tree: hashing, proofs, verification and the storage-side node plans.

Hashing is the Certificate Transparency tree (RFC 9162 section 2.1, identical to RFC 6962)::

    leaf hash = SHA-256(0x00 || leaf bytes)
    node hash = SHA-256(0x01 || left || right)
    root of the empty tree = SHA-256("")

A tree of ``n`` leaves splits at ``k``, the largest power of two below ``n``: the left part is a
perfect tree of ``k`` leaves and the right part holds the rest.

Two families of functions live here.

*List-based*, for auditors holding every leaf hash: :func:`root`, :func:`inclusion_proof` and
:func:`consistency_proof` are direct transcriptions of the recursive definitions in RFC 9162
sections 2.1.3.1 and 2.1.4.1, and :func:`verify_inclusion` and :func:`verify_consistency` follow
the bit-twiddling algorithms of sections 2.1.3.2 and 2.1.4.2 step by step.

*Node-based*, for a database that stores every perfect subtree it has completed. A perfect
subtree is addressed as ``(level, index)``: it covers leaves ``[index * 2**level,
(index + 1) * 2**level)``, and level 0 holds the leaf hashes. Every subtree hash a proof needs is
the right-to-left fold (:func:`fold_nodes`) of a few perfect subtrees, so a proof, a root or an
append costs O(log n) stored nodes:

* :class:`CompactRange` is the right frontier of a tree; appending a leaf returns every perfect
  node the append completes, which is exactly what the sequencer stores.
* :func:`frontier_nodes` names the nodes to load a :class:`CompactRange` (and the root) from.
* :func:`inclusion_proof_nodes` and :func:`consistency_proof_nodes` return a *plan*: for each
  proof element, the nodes whose fold is that element. Fetch :func:`plan_nodes` in one query,
  then call :func:`proof_from_nodes`.

Error policy: functions that *produce* hashes or proofs raise ``ValueError`` for arguments
outside their domain (an index past the tree, a consistency proof from size 0, a hash that is
not 32 bytes). Functions that *verify* never raise for any sizes or byte strings: they return
``False`` for a wrong proof and for every input RFC 9162 rejects (an index at or past the size,
a hash of the wrong length, a consistency proof from size 0, a first size above the second).

The one case RFC 9162 leaves open is a consistency proof between equal sizes: the proof is
empty (``SUBPROOF(n, D[n], true) = {}``) and it verifies exactly when the two roots are equal,
as in the transparency-dev and Go sumdb verifiers.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "CompactRange",
    "Node",
    "consistency_proof",
    "consistency_proof_nodes",
    "fold_nodes",
    "frontier_nodes",
    "inclusion_proof",
    "inclusion_proof_nodes",
    "leaf_hash",
    "node_hash",
    "plan_nodes",
    "proof_from_nodes",
    "range_nodes",
    "root",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

Node = tuple[int, int]
"""A perfect subtree ``(level, index)`` covering leaves ``[index << level, (index + 1) << level)``."""

_sha256 = hashlib.sha256


def leaf_hash(data: bytes) -> bytes:
    """Hash one leaf: SHA-256(0x00 || data)."""
    return _sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Hash an interior node: SHA-256(0x01 || left || right)."""
    return _sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """Return the largest power of two strictly below ``n`` (``n >= 2``)."""
    return 1 << ((n - 1).bit_length() - 1)


def _check_hashes(hashes: Sequence[bytes], what: str) -> None:
    for i, h in enumerate(hashes):
        if len(h) != HASH_SIZE:
            raise ValueError(f"{what}[{i}] is {len(h)} bytes, not {HASH_SIZE}")


def _mth(hashes: Sequence[bytes]) -> bytes:
    # Pairing level by level and carrying an odd last node up unchanged gives the same tree as
    # the recursive split at the largest power of two: the carried node is the right part.
    if not hashes:
        return EMPTY_ROOT
    level = list(hashes)
    while len(level) > 1:
        paired = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) & 1:
            paired.append(level[-1])
        level = paired
    return level[0]


def root(leaf_hashes: Sequence[bytes]) -> bytes:
    """Return the Merkle tree hash of the given leaf hashes."""
    _check_hashes(leaf_hashes, "leaf_hashes")
    return _mth(leaf_hashes)


def inclusion_proof(index: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """Return the audit path for leaf ``index`` in the tree of ``leaf_hashes`` (RFC 9162 PATH)."""
    size = len(leaf_hashes)
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is outside a tree of size {size}")
    _check_hashes(leaf_hashes, "leaf_hashes")

    def path(m: int, d: Sequence[bytes]) -> list[bytes]:
        n = len(d)
        if n == 1:
            return []
        k = _split(n)
        if m < k:
            return [*path(m, d[:k]), _mth(d[k:])]
        return [*path(m - k, d[k:]), _mth(d[:k])]

    return path(index, leaf_hashes)


def consistency_proof(first_size: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """Return the proof that the first ``first_size`` leaves are a prefix of ``leaf_hashes``."""
    size = len(leaf_hashes)
    if not 0 < first_size <= size:
        raise ValueError(f"no consistency proof from size {first_size} to size {size}")
    _check_hashes(leaf_hashes, "leaf_hashes")

    def subproof(m: int, d: Sequence[bytes], complete: bool) -> list[bytes]:
        n = len(d)
        if m == n:
            return [] if complete else [_mth(d)]
        k = _split(n)
        if m <= k:
            return [*subproof(m, d[:k], complete), _mth(d[k:])]
        return [*subproof(m - k, d[k:], False), _mth(d[:k])]

    return subproof(first_size, leaf_hashes, True)


def _all_hashes(*hashes: bytes) -> bool:
    return all(len(h) == HASH_SIZE for h in hashes)


def verify_inclusion(index: int, size: int, leaf_hash: bytes, proof: Sequence[bytes], root: bytes) -> bool:
    """Check an inclusion proof by RFC 9162 section 2.1.3.2."""
    if not 0 <= index < size:
        return False
    if not _all_hashes(leaf_hash, root, *proof):
        return False
    fn, sn = index, size - 1
    r = leaf_hash
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(
    first_size: int, second_size: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]
) -> bool:
    """Check a consistency proof by RFC 9162 section 2.1.4.2."""
    if not 0 < first_size <= second_size:
        return False
    if not _all_hashes(first_root, second_root, *proof):
        return False
    if first_size == second_size:
        return not proof and first_root == second_root
    # Step 1.
    if not proof:
        return False
    # Step 2.
    path = list(proof)
    if first_size & (first_size - 1) == 0:
        path.insert(0, first_root)
    # Steps 3 and 4.
    fn, sn = first_size - 1, second_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    # Step 5.
    fr = sr = path[0]
    # Step 6.
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    # Step 7.
    return fr == first_root and sr == second_root and sn == 0


# --- storage side ---------------------------------------------------------------------------


def range_nodes(begin: int, end: int) -> list[Node]:
    """Return the perfect subtrees that tile leaves ``[begin, end)``, left to right."""
    if not 0 <= begin <= end:
        raise ValueError(f"bad leaf range [{begin}, {end})")
    nodes: list[Node] = []
    pos = begin
    while pos < end:
        width = 1 << ((end - pos).bit_length() - 1)
        if pos:
            width = min(width, pos & -pos)
        level = width.bit_length() - 1
        nodes.append((level, pos >> level))
        pos += width
    return nodes


def frontier_nodes(size: int) -> list[Node]:
    """Return the perfect subtrees decomposing ``[0, size)``, largest first."""
    return range_nodes(0, size)


def fold_nodes(hashes: Sequence[bytes]) -> bytes:
    """Fold subtree hashes right to left: ``[a, b, c]`` gives ``H(a, H(b, c))``."""
    if not hashes:
        raise ValueError("nothing to fold")
    acc = hashes[-1]
    for h in reversed(hashes[:-1]):
        acc = node_hash(h, acc)
    return acc


def inclusion_proof_nodes(index: int, size: int) -> list[list[Node]]:
    """Plan the inclusion proof of leaf ``index`` in a tree of ``size`` leaves."""
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is outside a tree of size {size}")
    plan: list[list[Node]] = []
    lo, hi, m = 0, size, index
    # Walking down from the root meets the siblings top first; the proof lists them leaf first.
    while hi - lo > 1:
        k = _split(hi - lo)
        if m < k:
            plan.append(range_nodes(lo + k, hi))
            hi = lo + k
        else:
            plan.append(range_nodes(lo, lo + k))
            lo += k
            m -= k
    plan.reverse()
    return plan


def consistency_proof_nodes(first: int, second: int) -> list[list[Node]]:
    """Plan the consistency proof from tree size ``first`` to tree size ``second``."""
    if not 0 < first <= second:
        raise ValueError(f"no consistency proof from size {first} to size {second}")
    plan: list[list[Node]] = []
    lo, hi, m, complete = 0, second, first, True
    while m != hi - lo:
        k = _split(hi - lo)
        if m <= k:
            plan.append(range_nodes(lo + k, hi))
            hi = lo + k
        else:
            plan.append(range_nodes(lo, lo + k))
            lo += k
            m -= k
            complete = False
    if not complete:
        plan.append(range_nodes(lo, hi))
    plan.reverse()
    return plan


def plan_nodes(*plans: Iterable[Iterable[Node]]) -> list[Node]:
    """Return the distinct nodes a set of plans needs, sorted, for one storage query."""
    return sorted({node for plan in plans for element in plan for node in element})


def proof_from_nodes(plan: Sequence[Sequence[Node]], lookup: Mapping[Node, bytes]) -> list[bytes]:
    """Assemble a proof from a plan and the stored node hashes it names (``KeyError`` if one is missing)."""
    missing = [node for element in plan for node in element if node not in lookup]
    if missing:
        raise KeyError(f"stored nodes missing: {missing[:8]}")
    return [fold_nodes([lookup[node] for node in element]) for element in plan]


@dataclass
class CompactRange:
    """The right frontier of a tree: enough to append leaves and compute the root.

    ``hashes`` are the roots of :func:`frontier_nodes` ``(size)``, largest (leftmost) first.
    """

    size: int
    hashes: list[bytes] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.size < 0:
            raise ValueError(f"negative tree size {self.size}")
        if len(self.hashes) != self.size.bit_count():
            raise ValueError(f"a tree of size {self.size} has {self.size.bit_count()} frontier hashes")
        _check_hashes(self.hashes, "hashes")
        self.hashes = list(self.hashes)

    @classmethod
    def empty(cls) -> CompactRange:
        """Return the frontier of the empty tree."""
        return cls(0, [])

    def copy(self) -> CompactRange:
        """Return an independent copy."""
        return CompactRange(self.size, list(self.hashes))

    def append(self, leaf_hash: bytes) -> list[tuple[int, int, bytes]]:
        """Append a leaf hash; return every perfect node it completes, the leaf first."""
        return self.append_subtree(0, leaf_hash)

    def append_subtree(self, level: int, subtree_hash: bytes) -> list[tuple[int, int, bytes]]:
        """Append a perfect subtree of ``2**level`` leaves; return the nodes it completes."""
        if len(subtree_hash) != HASH_SIZE:
            raise ValueError(f"hash is {len(subtree_hash)} bytes, not {HASH_SIZE}")
        if self.size & ((1 << level) - 1):
            raise ValueError(f"a level {level} subtree cannot start at leaf {self.size}")
        index = self.size >> level
        self.size += 1 << level
        completed = [(level, index, subtree_hash)]
        h = subtree_hash
        hashes = self.hashes
        # Each set low bit of the index is a left sibling already on the frontier: merge it.
        while index & 1:
            h = _sha256(b"\x01" + hashes.pop() + h).digest()
            level += 1
            index >>= 1
            completed.append((level, index, h))
        hashes.append(h)
        return completed

    def root(self) -> bytes:
        """Return the root hash of the tree."""
        if not self.hashes:
            return EMPTY_ROOT
        return fold_nodes(self.hashes)

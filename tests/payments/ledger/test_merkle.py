"""RFC 9162 tree: reference vectors, proofs against the RFC verifiers, and stored-node plans."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from payments.ledger.merkle import (
    EMPTY_ROOT,
    CompactRange,
    consistency_proof,
    consistency_proof_nodes,
    fold_nodes,
    frontier_nodes,
    inclusion_proof,
    inclusion_proof_nodes,
    leaf_hash,
    node_hash,
    plan_nodes,
    proof_from_nodes,
    range_nodes,
    root,
    verify_consistency,
    verify_inclusion,
)

# RFC 6962 reference leaves and the roots of the trees of their first n leaves.
RFC6962_LEAVES = [
    bytes.fromhex(h)
    for h in [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ]
]
RFC6962_ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]

MAX_LEAVES = 300
LEAVES = [leaf_hash(i.to_bytes(4, "big")) for i in range(MAX_LEAVES)]


def build(n: int) -> tuple[CompactRange, dict[tuple[int, int], bytes]]:
    """Append the first n leaves, storing every completed node as the sequencer does."""
    tree = CompactRange.empty()
    store: dict[tuple[int, int], bytes] = {}
    for h in LEAVES[:n]:
        for level, index, node in tree.append(h):
            assert (level, index) not in store
            store[(level, index)] = node
    return tree, store


FULL_TREE, STORE = build(MAX_LEAVES)
ROOTS = [CompactRange.empty().root()]
_growing = CompactRange.empty()
for _h in LEAVES:
    _growing.append(_h)
    ROOTS.append(_growing.root())


def flip(data: bytes, bit: int) -> bytes:
    out = bytearray(data)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


# --- reference vectors ------------------------------------------------------------------------


def test_hash_domain_separation() -> None:
    assert leaf_hash(b"") == hashlib.sha256(b"\x00").digest()
    assert node_hash(b"a" * 32, b"b" * 32) == hashlib.sha256(b"\x01" + b"a" * 32 + b"b" * 32).digest()
    assert hashlib.sha256(b"").digest() == EMPTY_ROOT


STORE_FOR_RFC: dict[tuple[int, int], bytes] = {}
_rfc_tree = CompactRange.empty()
for _x in RFC6962_LEAVES:
    for _level, _index, _node in _rfc_tree.append(leaf_hash(_x)):
        STORE_FOR_RFC[(_level, _index)] = _node


@pytest.mark.parametrize("size", range(9))
def test_rfc6962_reference_roots(size: int) -> None:
    hashes = [leaf_hash(x) for x in RFC6962_LEAVES[:size]]
    assert root(hashes).hex() == RFC6962_ROOTS[size]
    tree = CompactRange.empty()
    for h in hashes:
        tree.append(h)
    assert tree.root().hex() == RFC6962_ROOTS[size]
    assert tree == CompactRange(size, [STORE_FOR_RFC[node] for node in frontier_nodes(size)])


def test_rfc6962_reference_proofs_verify() -> None:
    hashes = [leaf_hash(x) for x in RFC6962_LEAVES]
    for n in range(1, 9):
        r = bytes.fromhex(RFC6962_ROOTS[n])
        for i in range(n):
            assert verify_inclusion(i, n, hashes[i], inclusion_proof(i, hashes[:n]), r) is True
        for m in range(1, n + 1):
            proof = consistency_proof(m, hashes[:n])
            assert verify_consistency(m, n, bytes.fromhex(RFC6962_ROOTS[m]), r, proof) is True


def test_rfc9162_example_tree_of_seven() -> None:
    # RFC 9162 section 2.1.5: leaves a..f and j (d6 sits alone under l), g h i are pairs,
    # k = H(g, h) and l = H(i, j).
    hashes = [leaf_hash(x) for x in RFC6962_LEAVES[:7]]
    a, b, c, d, e, f, j = hashes
    g, h, i = node_hash(a, b), node_hash(c, d), node_hash(e, f)
    k, l_ = node_hash(g, h), node_hash(i, j)
    assert inclusion_proof(0, hashes) == [b, h, l_]
    assert inclusion_proof(3, hashes) == [c, g, l_]
    assert inclusion_proof(4, hashes) == [f, j, k]
    assert inclusion_proof(6, hashes) == [i, k]
    assert consistency_proof(3, hashes) == [c, d, g, l_]
    assert consistency_proof(4, hashes) == [l_]
    assert consistency_proof(6, hashes) == [i, j, k]
    assert root(hashes) == node_hash(k, l_)


# --- exhaustive small trees -------------------------------------------------------------------


def test_every_proof_verifies_and_every_bit_flip_fails_up_to_12_leaves() -> None:
    for n in range(1, 13):
        r = ROOTS[n]
        for i in range(n):
            proof = inclusion_proof(i, LEAVES[:n])
            assert verify_inclusion(i, n, LEAVES[i], proof, r) is True
            for bit in range(256):
                assert verify_inclusion(i, n, flip(LEAVES[i], bit), proof, r) is False
                assert verify_inclusion(i, n, LEAVES[i], proof, flip(r, bit)) is False
                for k in range(len(proof)):
                    bad = [*proof[:k], flip(proof[k], bit), *proof[k + 1 :]]
                    assert verify_inclusion(i, n, LEAVES[i], bad, r) is False
        for m in range(1, n + 1):
            proof = consistency_proof(m, LEAVES[:n])
            assert verify_consistency(m, n, ROOTS[m], r, proof) is True
            for bit in range(0, 256, 3):
                assert verify_consistency(m, n, flip(ROOTS[m], bit), r, proof) is False
                assert verify_consistency(m, n, ROOTS[m], flip(r, bit), proof) is False
                for k in range(len(proof)):
                    bad = [*proof[:k], flip(proof[k], bit), *proof[k + 1 :]]
                    assert verify_consistency(m, n, ROOTS[m], r, bad) is False


def test_wrong_positions_and_proof_lengths_fail_up_to_16_leaves() -> None:
    for n in range(1, 17):
        for i in range(n):
            proof = inclusion_proof(i, LEAVES[:n])
            # The size alone is not bound by a path (the signed checkpoint binds it), but the
            # position is: the same path read for a neighbouring index never verifies.
            for j in (i - 1, i + 1):
                if 0 <= j < n:
                    assert verify_inclusion(j, n, LEAVES[i], proof, ROOTS[n]) is False
            assert verify_inclusion(i, n, LEAVES[i], [*proof, LEAVES[0]], ROOTS[n]) is False
            if proof:
                assert verify_inclusion(i, n, LEAVES[i], proof[:-1], ROOTS[n]) is False
        for m in range(1, n):
            proof = consistency_proof(m, LEAVES[:n])
            assert verify_consistency(m, n, ROOTS[m], ROOTS[n], [*proof, LEAVES[0]]) is False
            assert verify_consistency(m, n, ROOTS[m], ROOTS[n], proof[:-1]) is False


# --- properties up to 300 leaves --------------------------------------------------------------

sizes = st.integers(min_value=1, max_value=MAX_LEAVES)


@settings(max_examples=300, deadline=None)
@given(n=sizes, data=st.data())
def test_inclusion_proofs_verify_and_mutations_fail(n: int, data: st.DataObject) -> None:
    i = data.draw(st.integers(0, n - 1))
    proof = inclusion_proof(i, LEAVES[:n])
    assert proof == proof_from_nodes(inclusion_proof_nodes(i, n), STORE)
    assert verify_inclusion(i, n, LEAVES[i], proof, ROOTS[n]) is True
    bit = data.draw(st.integers(0, 255))
    assert verify_inclusion(i, n, flip(LEAVES[i], bit), proof, ROOTS[n]) is False
    assert verify_inclusion(i, n, LEAVES[i], proof, flip(ROOTS[n], bit)) is False
    for k in range(len(proof)):
        bad = [*proof[:k], flip(proof[k], bit), *proof[k + 1 :]]
        assert verify_inclusion(i, n, LEAVES[i], bad, ROOTS[n]) is False


@settings(max_examples=300, deadline=None)
@given(n=sizes, data=st.data())
def test_consistency_proofs_verify_and_mutations_fail(n: int, data: st.DataObject) -> None:
    m = data.draw(st.integers(1, n))
    proof = consistency_proof(m, LEAVES[:n])
    assert proof == proof_from_nodes(consistency_proof_nodes(m, n), STORE)
    assert verify_consistency(m, n, ROOTS[m], ROOTS[n], proof) is True
    bit = data.draw(st.integers(0, 255))
    assert verify_consistency(m, n, flip(ROOTS[m], bit), ROOTS[n], proof) is False
    assert verify_consistency(m, n, ROOTS[m], flip(ROOTS[n], bit), proof) is False
    for k in range(len(proof)):
        bad = [*proof[:k], flip(proof[k], bit), *proof[k + 1 :]]
        assert verify_consistency(m, n, ROOTS[m], ROOTS[n], bad) is False


def test_stored_node_proofs_verify_for_every_pair_up_to_300() -> None:
    for n in range(1, MAX_LEAVES + 1):
        r = fold_nodes([STORE[x] for x in frontier_nodes(n)])
        assert r == ROOTS[n]
        for m in range(1, n + 1):
            included = proof_from_nodes(inclusion_proof_nodes(m - 1, n), STORE)
            assert verify_inclusion(m - 1, n, LEAVES[m - 1], included, r) is True
            consistent = proof_from_nodes(consistency_proof_nodes(m, n), STORE)
            assert verify_consistency(m, n, ROOTS[m], r, consistent) is True


@pytest.mark.parametrize("n", [*range(1, 65), 127, 128, 129, 255, 256, 257, 300])
def test_stored_node_proofs_equal_list_proofs(n: int) -> None:
    for i in range(n):
        assert proof_from_nodes(inclusion_proof_nodes(i, n), STORE) == inclusion_proof(i, LEAVES[:n])
    for m in range(1, n + 1):
        assert proof_from_nodes(consistency_proof_nodes(m, n), STORE) == consistency_proof(m, LEAVES[:n])


def test_plans_need_logarithmically_many_nodes() -> None:
    n = 1_000_000
    for index in (0, 1, 524_287, 524_288, 999_999):
        assert len(plan_nodes(inclusion_proof_nodes(index, n))) <= 2 * n.bit_length()
    for first in (1, 2, 3, 524_288, 700_001, 999_999, n):
        assert len(plan_nodes(consistency_proof_nodes(first, n))) <= 3 * n.bit_length()
    assert plan_nodes([[(0, 1), (1, 0)]], [[(0, 1)]]) == [(0, 1), (1, 0)]


# --- rejection rules --------------------------------------------------------------------------


def test_verifiers_reject_rather_than_raise() -> None:
    r, proof = ROOTS[5], inclusion_proof(2, LEAVES[:5])
    assert verify_inclusion(5, 5, LEAVES[2], proof, r) is False
    assert verify_inclusion(-1, 5, LEAVES[2], proof, r) is False
    assert verify_inclusion(0, 0, LEAVES[0], [], EMPTY_ROOT) is False
    assert verify_inclusion(2, 5, LEAVES[2][:31], proof, r) is False
    assert verify_inclusion(2, 5, LEAVES[2], proof, r + b"\x00") is False
    assert verify_inclusion(2, 5, LEAVES[2], [*proof[:-1], proof[-1][:-1]], r) is False
    assert verify_inclusion(0, 1, LEAVES[0], [], ROOTS[1]) is True
    assert verify_inclusion(0, 1, LEAVES[0], [LEAVES[1]], ROOTS[1]) is False

    cproof = consistency_proof(3, LEAVES[:7])
    assert verify_consistency(3, 7, ROOTS[3], ROOTS[7], cproof) is True
    assert verify_consistency(0, 7, EMPTY_ROOT, ROOTS[7], []) is False
    assert verify_consistency(0, 7, EMPTY_ROOT, ROOTS[7], cproof) is False
    assert verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, []) is False
    assert verify_consistency(7, 3, ROOTS[7], ROOTS[3], cproof) is False
    assert verify_consistency(3, 7, ROOTS[3], ROOTS[7], []) is False
    assert verify_consistency(3, 7, ROOTS[3][:16], ROOTS[7], cproof) is False
    assert verify_consistency(3, 7, ROOTS[3], ROOTS[7], [cproof[0] + b"x", *cproof[1:]]) is False


def test_an_index_outside_the_tree_never_verifies() -> None:
    # A one-leaf tree's root is its leaf hash, so without the bounds check these would pass.
    assert verify_inclusion(0, 1, LEAVES[0], [], ROOTS[1]) is True
    assert verify_inclusion(1, 1, LEAVES[0], [], ROOTS[1]) is False
    assert verify_inclusion(-1, 1, LEAVES[0], [], ROOTS[1]) is False
    assert verify_inclusion(4, 4, LEAVES[3], inclusion_proof(3, LEAVES[:4]), ROOTS[4]) is False


def test_a_proof_longer_than_its_path_never_verifies_even_when_it_folds_to_the_root() -> None:
    # Leaf 2 of the four-leaf tree, passed off as leaf 0 of a two-leaf tree with one extra
    # element on top: the hashes fold to the real root, but the path of (0, 2) has length 1.
    left = node_hash(LEAVES[0], LEAVES[1])
    assert verify_inclusion(2, 4, LEAVES[2], [LEAVES[3], left], ROOTS[4]) is True
    assert verify_inclusion(0, 2, LEAVES[2], [LEAVES[3], left], ROOTS[4]) is False
    # The same for consistency: the trees of leaves 4..6 and 4..7 under the subtree of 0..3
    # are the trees of sizes 7 and 8, but a proof from size 3 to size 4 has no room for it.
    proof = consistency_proof(3, LEAVES[4:8])
    assert verify_consistency(3, 4, root(LEAVES[4:7]), root(LEAVES[4:8]), proof) is True
    assert verify_consistency(3, 4, ROOTS[7], ROOTS[8], [*proof, root(LEAVES[:4])]) is False


def test_consistency_between_equal_sizes() -> None:
    assert consistency_proof(7, LEAVES[:7]) == []
    assert consistency_proof_nodes(7, 7) == []
    assert verify_consistency(7, 7, ROOTS[7], ROOTS[7], []) is True
    assert verify_consistency(7, 7, ROOTS[7], ROOTS[6], []) is False
    assert verify_consistency(7, 7, ROOTS[7], ROOTS[7], [LEAVES[0]]) is False


def test_producers_raise_for_impossible_requests() -> None:
    with pytest.raises(ValueError, match="outside"):
        inclusion_proof(3, LEAVES[:3])
    with pytest.raises(ValueError, match="outside"):
        inclusion_proof_nodes(-1, 3)
    with pytest.raises(ValueError, match="^leaf index -1 is outside a tree of size 3$"):
        inclusion_proof(-1, LEAVES[:3])
    with pytest.raises(ValueError, match="^leaf index 3 is outside a tree of size 3$"):
        inclusion_proof_nodes(3, 3)
    with pytest.raises(ValueError, match=r"^bad leaf range \[-1, 3\)$"):
        range_nodes(-1, 3)
    with pytest.raises(ValueError, match="size 0"):
        consistency_proof(0, LEAVES[:3])
    with pytest.raises(ValueError, match="size 4"):
        consistency_proof(4, LEAVES[:3])
    with pytest.raises(ValueError, match="from size 0"):
        consistency_proof_nodes(0, 3)
    with pytest.raises(ValueError, match="not 32"):
        root([b"short"])
    with pytest.raises(ValueError, match="nothing"):
        fold_nodes([])
    with pytest.raises(ValueError, match="range"):
        range_nodes(5, 4)
    with pytest.raises(KeyError, match="missing"):
        proof_from_nodes(inclusion_proof_nodes(0, 4), {})


@pytest.mark.parametrize(
    "produce",
    [root, lambda hashes: inclusion_proof(0, hashes), lambda hashes: consistency_proof(1, hashes)],
    ids=["root", "inclusion_proof", "consistency_proof"],
)
def test_producers_refuse_a_hash_that_is_not_32_bytes(produce: Callable[[list[bytes]], object]) -> None:
    for bad in (LEAVES[1][:31], LEAVES[1] + b"\x00"):
        with pytest.raises(ValueError, match=rf"^leaf_hashes\[1\] is {len(bad)} bytes, not 32$"):
            produce([LEAVES[0], bad, LEAVES[2]])


def test_missing_stored_nodes_are_named_eight_at_most() -> None:
    plan = inclusion_proof_nodes(0, 1000)
    with pytest.raises(KeyError) as caught:
        proof_from_nodes(plan, {})
    assert caught.value.args == (
        "stored nodes missing: [(0, 1), (1, 1), (2, 1), (3, 1), (4, 1), (5, 1), (6, 1), (7, 1)]",
    )
    stored = {node: bytes(32) for node in plan_nodes(plan) if node not in {(3, 1), (8, 1)}}
    with pytest.raises(KeyError) as caught:
        proof_from_nodes(plan, stored)
    assert caught.value.args == ("stored nodes missing: [(3, 1), (8, 1)]",)


# --- compact range ----------------------------------------------------------------------------


def test_compact_range_reports_every_completed_node() -> None:
    tree = CompactRange.empty()
    assert tree.root() == EMPTY_ROOT
    assert tree.append(LEAVES[0]) == [(0, 0, LEAVES[0])]
    assert tree.append(LEAVES[1]) == [(0, 1, LEAVES[1]), (1, 0, node_hash(LEAVES[0], LEAVES[1]))]
    assert [level for level, _, _ in tree.append(LEAVES[2])] == [0]
    assert [(level, index) for level, index, _ in tree.append(LEAVES[3])] == [(0, 3), (1, 1), (2, 0)]
    # A tree of n leaves holds 2n - popcount(n) perfect nodes.
    assert len(STORE) == 2 * MAX_LEAVES - MAX_LEAVES.bit_count()


def test_compact_range_reloads_from_stored_nodes() -> None:
    for n in (0, 1, 2, 3, 100, 255, 256, 299):
        reloaded = CompactRange(n, [STORE[x] for x in frontier_nodes(n)])
        assert reloaded.root() == ROOTS[n]
        copy = reloaded.copy()
        for h in LEAVES[n:]:
            copy.append(h)
        assert copy == FULL_TREE
        assert reloaded.size == n


def test_compact_range_appends_whole_subtrees() -> None:
    tree = CompactRange.empty()
    assert tree.append_subtree(3, STORE[(3, 0)]) == [(3, 0, STORE[(3, 0)])]
    assert tree.append_subtree(2, STORE[(2, 2)]) == [(2, 2, STORE[(2, 2)])]
    assert tree.size == 12
    assert tree.append(LEAVES[12]) == [(0, 12, LEAVES[12])]
    assert tree.root() == ROOTS[13]
    with pytest.raises(ValueError, match="cannot start"):
        tree.append_subtree(1, STORE[(1, 0)])
    # A subtree that completes its left sibling reports the merged parents too.
    tree = CompactRange.empty()
    tree.append_subtree(2, STORE[(2, 0)])
    assert tree.append_subtree(2, STORE[(2, 1)]) == [(2, 1, STORE[(2, 1)]), (3, 0, STORE[(3, 0)])]
    assert (tree.size, tree.hashes) == (8, [STORE[(3, 0)]])


def test_compact_range_refuses_a_hash_that_is_not_32_bytes() -> None:
    tree = CompactRange(3, [STORE[x] for x in frontier_nodes(3)])
    for level, bad in ((0, LEAVES[3][:31]), (0, LEAVES[3] + b"\x00"), (2, b"")):
        with pytest.raises(ValueError, match=f"^hash is {len(bad)} bytes, not 32$"):
            tree.append_subtree(level, bad)
    with pytest.raises(ValueError, match="^hash is 31 bytes, not 32$"):
        tree.append(LEAVES[3][:31])
    assert tree == CompactRange(3, [STORE[x] for x in frontier_nodes(3)])


def test_compact_range_owns_its_frontier() -> None:
    hashes = [STORE[x] for x in frontier_nodes(3)]
    given = list(hashes)
    tree = CompactRange(3, hashes)
    tree.append(LEAVES[3])
    assert hashes == given
    hashes.clear()
    assert tree.hashes == [STORE[(2, 0)]]
    assert tree.root() == ROOTS[4]
    copy = tree.copy()
    copy.append(LEAVES[4])
    assert (tree.size, tree.root()) == (4, ROOTS[4])


def test_compact_range_validates_its_shape() -> None:
    with pytest.raises(ValueError, match="frontier hashes"):
        CompactRange(3, [LEAVES[0]])
    with pytest.raises(ValueError, match="negative"):
        CompactRange(-1, [])
    with pytest.raises(ValueError, match=r"^hashes\[1\] is 1 bytes, not 32$"):
        CompactRange(3, [LEAVES[0], b"x"])


@settings(max_examples=200, deadline=None)
@given(begin=st.integers(0, 5000), width=st.integers(0, 5000))
def test_range_nodes_tile_the_range_with_aligned_perfect_subtrees(begin: int, width: int) -> None:
    pos = begin
    for level, index in range_nodes(begin, begin + width):
        assert index << level == pos
        pos += 1 << level
    assert pos == begin + width
    assert frontier_nodes(width) == range_nodes(0, width)
    assert len(frontier_nodes(width)) == width.bit_count()

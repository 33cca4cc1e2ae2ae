"""The book's stored leaf content plus the log's members give exactly the canonical leaf."""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from payments.ledger.canonical import (
    METADATA_KEYS,
    METADATA_VALUE,
    assemble_leaf,
    build_leaf,
    leaf_bytes,
    leaf_content,
    metadata_problems,
)

from .conftest import make_leaves

text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=30).map(
    lambda s: unicodedata.normalize("NFC", s)
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**15), 10**15) | text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=6,
)
references = st.dictionaries(
    st.sampled_from(sorted(METADATA_KEYS)),
    st.from_regex(METADATA_VALUE, fullmatch=True) | st.integers(0, 2**63 - 1),
    max_size=4,
)


def _split(leaf):
    content = leaf_content(
        key=leaf["key"],
        kind=leaf["kind"],
        memo=leaf["memo"],
        occurred_at=datetime.fromisoformat(leaf["occurred_at"].replace("Z", "+00:00")),
        postings=[(p["account"], p["amount"]) for p in leaf["postings"]],
        metadata=leaf["metadata"],
    )
    return assemble_leaf(leaf["index"], bytes.fromhex(leaf["prev"]), content, leaf["tx"], leaf["reverses"])


def test_assembled_leaves_equal_the_canonical_leaves():
    postable = [leaf for leaf in make_leaves(60) if not metadata_problems(leaf["metadata"])]
    assert len(postable) > 50
    for leaf in postable:
        assert _split(leaf) == leaf_bytes(leaf)


@settings(max_examples=200, deadline=None)
@given(
    key=text,
    kind=text,
    memo=st.text(max_size=40).map(lambda s: unicodedata.normalize("NFC", s)),
    metadata=references | st.dictionaries(text, json_values, max_size=4),
    amount=st.integers(1, 10**12),
    index=st.integers(1, 10**9),
    reverses=st.none() | st.just("TX-0000000007") | text,
    tx=st.just("TX-0000000042") | text,
)
def test_assembly_matches_for_any_content(key, kind, memo, metadata, amount, index, reverses, tx):
    try:
        leaf = build_leaf(
            index=index,
            prev=bytes(range(32)),
            tx=tx,
            key=key,
            kind=kind,
            memo=memo,
            occurred_at=datetime(2026, 11, 26, 1, 2, 3, 4, tzinfo=UTC),
            postings=[("a:1", amount), ("b:2", -amount)],
            metadata=metadata,
            reverses=reverses,
        )
        if metadata_problems(metadata):
            raise ValueError("not postable")
    except ValueError:
        with pytest.raises(ValueError, match="invalid ledger leaf"):
            leaf_content(
                key=key,
                kind=kind,
                memo=memo,
                occurred_at=datetime(2026, 1, 1, tzinfo=UTC),
                postings=[("a:1", amount), ("b:2", -amount)],
                metadata=metadata,
            )
        return
    assert _split(leaf) == leaf_bytes(leaf)

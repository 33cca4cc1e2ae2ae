"""Canonical JSON and the version 1 leaf schema."""

from __future__ import annotations

import enum
import json
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from payments.ledger.canonical import (
    ATTESTATION,
    GENESIS_PREV,
    LEAF_KEYS,
    LEAF_VERSION,
    METADATA_KEYS,
    assemble_leaf,
    build_leaf,
    canonical_json,
    check_leaf,
    format_timestamp,
    leaf_bytes,
    leaf_content,
)


def leaf(**overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "index": 3,
        "prev": "ab" * 32,
        "tx": "TX-0003",
        "key": "payout:PB-1:0003",
        "kind": "payout",
        "memo": "Trợ cấp tháng 11",
        "occurred_at": datetime(2026, 11, 26, 22, 54, 22, 123456, tzinfo=UTC),
        "postings": [("program:TCXH:budget", -150_000), ("payouts:clearing", 150_000)],
        "metadata": {"batch": "PB-1", "payout_ref": "PI-3"},
    }
    fields.update(overrides)
    return build_leaf(**fields)


# --- canonical JSON ---------------------------------------------------------------------------


def test_canonical_json_layout() -> None:
    value = {"b": [1, True, None, "ở"], "a": {"z": -5, "y": ""}, "é": False}
    assert canonical_json(value) == '{"a":{"y":"","z":-5},"b":[1,true,null,"ở"],"é":false}'.encode()


def test_canonical_json_escapes_only_what_json_must() -> None:
    assert canonical_json({"m": 'say "hi"\\\n\u2028'}) == b'{"m":"say \\"hi\\"\\\\\\n\xe2\x80\xa8"}'


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (1.0, "floats"),
        (float("nan"), "floats"),
        ({"a": [0.5]}, r"\$\.a\[0\]: floats"),
        ({1: "x"}, "key 1 is int"),
        ((1, 2), "tuple"),
        (Decimal("1"), "Decimal"),
        (datetime(2026, 1, 1, tzinfo=UTC), "datetime"),
        (b"raw", "bytes"),
        ({"x": {1, 2}}, "set"),
        ("e\u0301", "NFC"),
        ({"e\u0301": 1}, "NFC"),
        ("\ud800", "UTF-8"),
    ],
)
def test_canonical_json_refuses(value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        canonical_json(value)


def test_enum_members_encode_as_their_values() -> None:
    class Kind(enum.StrEnum):
        PAYOUT = "payout"

    class Level(enum.IntEnum):
        HIGH = 3

    assert canonical_json({"k": Kind.PAYOUT, "l": Level.HIGH}) == b'{"k":"payout","l":3}'


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_canonical_json_is_a_fixed_point(value: Any) -> None:
    try:
        encoded = canonical_json(value)
    except ValueError:
        return  # text that is not NFC, or a lone surrogate
    decoded = json.loads(encoded)
    assert decoded == value
    assert canonical_json(decoded) == encoded


# --- leaves -----------------------------------------------------------------------------------


def test_build_leaf_produces_the_schema() -> None:
    built = leaf()
    assert built.keys() == LEAF_KEYS
    assert built["v"] == LEAF_VERSION
    assert built["occurred_at"] == "2026-11-26T22:54:22.123456Z"
    assert built["postings"] == [
        {"account": "program:TCXH:budget", "amount": -150_000},
        {"account": "payouts:clearing", "amount": 150_000},
    ]
    assert built["reverses"] is None
    assert check_leaf(built) == []
    assert leaf_bytes(built) == canonical_json(built)
    assert leaf_bytes(built).startswith(b'{"index":3,"key":"payout:PB-1:0003","kind":"payout","memo":')


def test_build_leaf_accepts_the_shapes_callers_have() -> None:
    built = leaf(
        prev=bytes(range(32)),
        postings=[{"account": "a", "amount": 5}, {"account": "b", "amount": -5}],
        occurred_at="2026-01-02T03:04:05.000006Z",
        reverses="TX-0001",
        metadata=None,
    )
    assert built["prev"] == bytes(range(32)).hex()
    assert built["metadata"] == {}
    assert built["reverses"] == "TX-0001"
    assert leaf(index=0, prev=GENESIS_PREV)["prev"] == "0" * 64


def test_timestamps_are_utc_with_microseconds() -> None:
    hanoi = timezone(timedelta(hours=7))
    moment = datetime(2026, 11, 27, 5, 54, 22, 1, tzinfo=hanoi)
    assert format_timestamp(moment) == "2026-11-26T22:54:22.000001Z"
    with pytest.raises(ValueError, match="timezone-aware"):
        format_timestamp(datetime(2026, 11, 26))  # noqa: DTZ001


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"postings": [("a", 100), ("b", -99)]}, "sum to 1, not 0"),
        ({"postings": [("a", 0), ("b", 0)]}, "must not be zero"),
        ({"postings": [("a", 100)]}, "at least 2"),
        ({"postings": [("a", 1.5), ("b", -1.5)]}, "must be an integer"),
        ({"postings": [("a", True), ("b", -1)]}, "must be an integer"),
        ({"postings": [("", 1), ("b", -1)]}, "account: must be a non-empty string"),
        ({"index": -1}, "index"),
        ({"index": 0}, "64 zeros for index 0"),
        ({"prev": "AB" * 32}, "lowercase hex"),
        ({"prev": b"short"}, "64 lowercase hex"),
        ({"tx": ""}, "tx: must be a non-empty string"),
        ({"key": 5}, "key: must be a non-empty string"),
        ({"kind": ""}, "kind"),
        ({"memo": None}, "memo: must be a string"),
        ({"memo": "e\u0301"}, "NFC"),
        ({"occurred_at": "2026-11-26T22:54:22Z"}, "microseconds"),
        ({"occurred_at": "2026-02-30T00:00:00.000000Z"}, "not a real instant"),
        ({"occurred_at": datetime(2026, 1, 1)}, "timezone-aware"),  # noqa: DTZ001
        ({"metadata": {"rate": 0.5}}, "floats"),
        ({"reverses": ""}, "reverses"),
    ],
)
def test_build_leaf_refuses(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        leaf(**overrides)


def test_check_leaf_names_every_problem() -> None:
    good = leaf()
    assert check_leaf("nope") == ["leaf must be a JSON object, not str"]
    assert check_leaf({**good, "extra": 1}) == ["unknown fields: extra"]
    missing = dict(good)
    del missing["memo"]
    assert check_leaf(missing)[0] == "missing fields: memo"
    assert check_leaf({**good, "v": 2}) == ["v: must be 1, not 2"]
    assert check_leaf({**good, "v": True}) == ["v: must be 1, not True"]
    assert check_leaf({**good, "postings": "x"}) == ["postings: must be a list"]
    assert check_leaf({**good, "postings": [{"account": "a"}, {"account": "b", "amount": 1, "x": 2}]}) == [
        "postings[0]: must be an object with exactly account and amount",
        "postings[1]: must be an object with exactly account and amount",
    ]
    assert check_leaf({**good, "metadata": []}) == ["metadata: must be a JSON object"]
    assert check_leaf({**good, "metadata": {"a": {"b": [1, 2.0]}}}) == [
        "metadata.a.b[1]: floats are not allowed (got 2.0)"
    ]
    three = [{"account": "a", "amount": 5}, {"account": "b", "amount": -2}, {"account": "c", "amount": -3}]
    assert check_leaf({**good, "postings": three}) == []


def test_check_leaf_leaves_text_normalisation_to_the_writer() -> None:
    # What the log signed is judged for structure and money; NFC is enforced when writing.
    assert check_leaf({**leaf(), "memo": "e\u0301"}) == []


def test_leaf_assembled_from_stored_content_equals_the_built_leaf() -> None:
    fields: dict[str, Any] = {
        "key": "payout:PB-1:0007",
        "kind": "payout",
        "memo": 'Trợ cấp "tháng 11" \\ đợt 2',
        "occurred_at": datetime(2026, 11, 26, 22, 54, 22, 7, tzinfo=UTC),
        "postings": [("program:TCXH:budget", -150_000), ("payouts:clearing", 150_000)],
        "metadata": {"payout_ref": "PI-7", "batch": "PB-1", "checkpoint_size": 7},
    }
    content = leaf_content(**fields)
    for reverses in (None, "TX-0001"):
        built = build_leaf(index=7, prev=bytes(range(32)), tx="TX-0007", reverses=reverses, **fields)
        assert assemble_leaf(7, bytes(range(32)), content, "TX-0007", reverses) == leaf_bytes(built)


def test_the_verifier_judges_money_by_balance_not_by_size() -> None:
    # The book bounds amounts on the way in; a signed leaf is well-formed if it balances.
    assert check_leaf(leaf(postings=[("a", 2**63), ("b", -(2**63))])) == []


def _content(**metadata: Any) -> str:
    return leaf_content(
        key="k",
        kind="payout",
        memo="m",
        occurred_at=datetime(2026, 11, 26, tzinfo=UTC),
        postings=[("a", 1), ("b", -1)],
        metadata=metadata,
    )


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ({"national_id": "001099012345"}, "metadata.national_id: not a reference key"),
        ({"Name": "Nguyen Van Test"}, "metadata.Name: not a reference key"),
        ({"phone_number": "0900000001"}, "metadata.phone_number: not a reference key"),
        ({"x": {"national_id": "001099012345"}}, "metadata.x: not a reference key"),
        ({"payout_ref": {"national_id": "001099012345"}}, "metadata.payout_ref: must be"),
        ({"payout_ref": ["PO1"]}, "metadata.payout_ref: must be"),
        ({"payout_ref": "Nguyễn"}, "metadata.payout_ref: must be"),
        ({"payout_ref": "two words"}, "metadata.payout_ref: must be"),
        ({"payout_ref": ""}, "metadata.payout_ref: must be"),
        ({"payout_ref": "P" * 101}, "metadata.payout_ref: must be"),
        ({"checkpoint_size": -1}, "metadata.checkpoint_size: an integer value"),
        ({"checkpoint_size": 2**63}, "metadata.checkpoint_size: an integer value"),
        ({"checkpoint_size": True}, "metadata.checkpoint_size: must be"),
        ({"checkpoint_size": 1.5}, "metadata.checkpoint_size: must be"),
    ],
)
def test_only_reference_keys_with_short_ascii_values_enter_a_leaf(
    metadata: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        _content(**metadata)


def test_every_reference_key_is_accepted_at_its_limits() -> None:
    values = {key: "A" * 100 for key in METADATA_KEYS} | {"checkpoint_size": 2**63 - 1}
    assert '"checkpoint_size":9223372036854775807' in _content(**values)
    assert _content(payout_ref="!~") == _content(payout_ref="!~")


def test_a_leaf_nested_a_thousand_levels_is_refused_without_recursion() -> None:
    deep: dict[str, Any] = {}
    node = deep
    for _ in range(5000):
        node["payout_ref"] = {}
        node = node["payout_ref"]
    with pytest.raises(ValueError, match="metadata.payout_ref: must be"):
        _content(**deep)
    problems = check_leaf({**leaf(), "metadata": {"n": [[[1.5]]]}})
    assert problems == ["metadata.n[0][0][0]: floats are not allowed (got 1.5)"]


def test_an_attestation_moves_no_money() -> None:
    sealed = leaf(kind=ATTESTATION, postings=[], metadata={"report_digest": "ab" * 32})
    assert sealed["postings"] == []
    assert check_leaf(sealed) == []
    with pytest.raises(ValueError, match="moves no money"):
        leaf(kind=ATTESTATION)
    with pytest.raises(ValueError, match="at least 2"):
        leaf(postings=[])


DOCUMENTED_METADATA_KEYS = [
    "bank_txn_id",
    "batch",
    "checkpoint_size",
    "connector",
    "connector_txn_id",
    "funding_ref",
    "intent",
    "merchant",
    "payout_ref",
    "period",
    "program",
    "reason_code",
    "receipt",
    "reconciliation",
    "report_digest",
    "retry_of",
]


@pytest.mark.parametrize("key", DOCUMENTED_METADATA_KEYS)
def test_each_documented_reference_key_enters_a_leaf(key: str) -> None:
    assert f'"{key}":"REF-1"' in _content(**{key: "REF-1"})


def test_the_allow_list_is_exactly_the_documented_keys() -> None:
    assert sorted(METADATA_KEYS) == DOCUMENTED_METADATA_KEYS


def test_the_slow_check_names_the_real_problem_beside_vietnamese_text() -> None:
    with pytest.raises(ValueError, match=r"\$\.rate: floats are not allowed") as err:
        canonical_json({"memo": "Trợ cấp xã hội", "rate": 1.5})
    assert "NFC" not in str(err.value)
    with pytest.raises(ValueError, match=r"object key 'e\\u0301' is not Unicode NFC|not Unicode NFC"):
        canonical_json({"e\u0301": 1})


class _Floating(tzinfo):
    """A time zone that does not know its offset."""

    def utcoffset(self, dt: datetime | None) -> timedelta | None:
        return None

    def dst(self, dt: datetime | None) -> timedelta | None:
        return None

    def tzname(self, dt: datetime | None) -> str:
        return "floating"


def test_a_time_zone_without_an_offset_is_not_aware() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        format_timestamp(datetime(2026, 11, 26, tzinfo=_Floating()))


def test_check_leaf_names_non_json_metadata() -> None:
    good = leaf()
    assert check_leaf({**good, "metadata": {1: "x"}}) == ["metadata: object key 1 is not a string"]
    assert check_leaf({**good, "metadata": {"a": {b"raw"}}}) == ["metadata.a: set is not a JSON value"]
    assert check_leaf({**good, "metadata": {"a": [None, True, 1, "x"]}}) == []


def test_check_leaf_lists_every_missing_and_unknown_field() -> None:
    partial = {k: v for k, v in leaf().items() if k not in {"memo", "kind"}}
    problems = check_leaf({**partial, "extra": 1, "more": 2})
    assert problems[0] == "missing fields: kind, memo"
    assert problems[1] == "unknown fields: extra, more"


_JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=6,
)
_KEYS = st.text(max_size=4) | st.integers() | st.sampled_from(sorted(METADATA_KEYS))


@given(st.dictionaries(_KEYS, _JSONISH | st.sets(st.integers(), max_size=2), max_size=4))
@settings(max_examples=300, deadline=None)
def test_check_leaf_judges_metadata_as_the_full_walk_does(metadata: dict[Any, Any]) -> None:
    """The shortcut for flat metadata of strings and integers finds exactly what the walk finds."""
    import payments.ledger.canonical as canonical

    candidate = {**json.loads(leaf_bytes(leaf())), "metadata": metadata}
    found = check_leaf(candidate)
    flat, canonical._FLAT = canonical._FLAT, ()  # type: ignore[assignment]
    try:
        assert check_leaf(candidate) == found
    finally:
        canonical._FLAT = flat

"""Personal data protection: AES-GCM with key ids, rotation, tamper detection, blind index, masking."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chopay.crypto import DataKeyError, DataKeys, mask

ACCOUNT = "0123456789012"  # an obviously fake bank account number
NATIONAL_ID = "001099012345"  # an obviously fake citizen id


@pytest.fixture
def keys() -> DataKeys:
    return DataKeys.generate()


def test_round_trip(keys: DataKeys):
    sealed = keys.encrypt(ACCOUNT, "beneficiary.account")
    assert sealed.startswith("d1:")
    assert ACCOUNT not in sealed
    assert keys.decrypt(sealed, "beneficiary.account") == ACCOUNT


@given(st.text(max_size=200), st.text(min_size=1, max_size=40))
def test_round_trip_of_any_text(plaintext: str, context: str):
    keys = DataKeys.generate()
    assert keys.decrypt(keys.encrypt(plaintext, context), context) == plaintext


def test_each_encryption_uses_a_fresh_nonce(keys: DataKeys):
    assert keys.encrypt(ACCOUNT, "c") != keys.encrypt(ACCOUNT, "c")


def test_ciphertext_is_bound_to_its_context(keys: DataKeys):
    sealed = keys.encrypt(NATIONAL_ID, "beneficiary.national_id")
    with pytest.raises(DataKeyError, match="does not open"):
        keys.decrypt(sealed, "beneficiary.account")


def test_rotation_keeps_old_values_readable(keys: DataKeys):
    old = keys.encrypt(ACCOUNT, "acct")
    rotated = DataKeys("d2", {**keys.keys, "d2": os.urandom(32)}, keys.index_key)
    new = rotated.encrypt(ACCOUNT, "acct")
    assert new.startswith("d2:")
    assert rotated.decrypt(old, "acct") == ACCOUNT
    assert rotated.decrypt(new, "acct") == ACCOUNT
    # The blind index does not depend on the encryption key, so lookups survive rotation.
    assert rotated.blind_index(ACCOUNT, "acct") == keys.blind_index(ACCOUNT, "acct")
    # A key set without the new key cannot open new values.
    with pytest.raises(DataKeyError, match="no data key 'd2'"):
        keys.decrypt(new, "acct")


def _flip(sealed: str, index: int) -> str:
    kid, _, body = sealed.partition(":")
    raw = bytearray(base64.b64decode(body))
    raw[index] ^= 0x01
    return f"{kid}:{base64.b64encode(bytes(raw)).decode()}"


@pytest.mark.parametrize("index", [0, 11, 12, -1, -16])
def test_tampering_is_detected(keys: DataKeys, index: int):
    sealed = keys.encrypt(ACCOUNT, "acct")
    with pytest.raises(DataKeyError):
        keys.decrypt(_flip(sealed, index), "acct")


def test_truncated_or_garbled_ciphertext_is_refused(keys: DataKeys):
    sealed = keys.encrypt(ACCOUNT, "acct")
    with pytest.raises(DataKeyError):
        keys.decrypt(sealed[:-8], "acct")
    with pytest.raises(DataKeyError):
        keys.decrypt("d1:" + base64.b64encode(b"short").decode(), "acct")


@pytest.mark.parametrize("sealed", ["d1:abc", "d1:!!!!", "d1:", "", "no-colon", "d1:" + "A" * 7])
def test_malformed_ciphertext_raises_the_one_error_type(keys: DataKeys, sealed: str):
    with pytest.raises(DataKeyError):
        keys.decrypt(sealed, "acct")


def test_a_value_sealed_under_another_key_set_is_refused(keys: DataKeys):
    other = DataKeys.generate()  # same key id, different key
    with pytest.raises(DataKeyError):
        keys.decrypt(other.encrypt(ACCOUNT, "acct"), "acct")


def test_blind_index_is_stable_keyed_and_context_separated(keys: DataKeys):
    index = keys.blind_index(NATIONAL_ID, "national_id")
    assert index == keys.blind_index(NATIONAL_ID, "national_id")
    assert len(index) == 64
    int(index, 16)
    assert NATIONAL_ID not in index
    assert index != keys.blind_index("001099012346", "national_id")
    assert index != keys.blind_index(NATIONAL_ID, "account")
    assert index != DataKeys.generate().blind_index(NATIONAL_ID, "national_id")
    # Context and value are separated, so ("ab", "c") and ("a", "bc") never collide.
    assert keys.blind_index("c", "ab") != keys.blind_index("bc", "a")


def test_keys_survive_a_dump_and_load(keys: DataKeys, tmp_path: Path):
    path = tmp_path / "data-keys.json"
    path.write_text(keys.dump())
    loaded = DataKeys.load(path)
    assert loaded == keys
    assert loaded.decrypt(keys.encrypt(ACCOUNT, "acct"), "acct") == ACCOUNT
    raw = json.loads(path.read_text())
    assert raw["active"] == "d1"
    assert set(raw) == {"active", "keys", "index_key"}


def test_load_refuses_a_missing_active_key(keys: DataKeys, tmp_path: Path):
    raw = json.loads(keys.dump())
    raw["active"] = "d9"
    path = tmp_path / "data-keys.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(DataKeyError, match="d9"):
        DataKeys.load(path)


def test_generated_keys_are_256_bit_and_random():
    a, b = DataKeys.generate(), DataKeys.generate()
    assert len(a.keys["d1"]) == 32
    assert len(a.index_key) == 32
    assert a.keys["d1"] != b.keys["d1"]
    assert a.index_key != a.keys["d1"]


@pytest.mark.parametrize(
    ("value", "visible", "expected"),
    [
        (ACCOUNT, 4, "*********9012"),
        (NATIONAL_ID, 3, "*********345"),
        ("1234", 4, "****"),
        ("12", 4, "**"),
        ("", 4, ""),
    ],
)
def test_mask_shows_only_the_last_characters(value: str, visible: int, expected: str):
    assert mask(value, visible) == expected
    assert len(mask(value, visible)) == len(value)

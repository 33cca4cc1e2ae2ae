"""CRC-16/CCITT-FALSE: the check value, the conformance vectors and a reference loop."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from qr.crc import crc16, crc_hex
from tests.qr.vectors import ACB_DYNAMIC, NAPAS_DYNAMIC, NAPAS_STATIC_CARD


def _reference(data: bytes) -> int:
    """Compute CRC-16/CCITT-FALSE bit by bit, straight from its definition."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def test_check_value() -> None:
    assert crc_hex("123456789") == "29B1"
    assert crc16(b"123456789") == 0x29B1


def test_conformance_vectors_carry_their_crc() -> None:
    for payload in (NAPAS_DYNAMIC, NAPAS_STATIC_CARD, ACB_DYNAMIC):
        assert crc_hex(payload[:-4]) == payload[-4:]


def test_text_is_hashed_as_utf8() -> None:
    assert crc16("Đà Nẵng") == crc16("Đà Nẵng".encode())


def test_hex_is_four_uppercase_digits() -> None:
    value = crc_hex("")
    assert value == "FFFF"
    assert len(crc_hex("a")) == 4
    assert crc_hex("a") == crc_hex("a").upper()


@given(st.binary(max_size=600))
def test_matches_reference_loop(data: bytes) -> None:
    assert crc16(data) == _reference(data)

"""Pure rules of merchants, without a database: ids, references, statuses, QR text."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from merchants import domain
from qr import build_vietqr, decode
from qr.text import is_printable_ascii

AMBIGUOUS = set("01OI")


def test_references_have_the_documented_shape() -> None:
    for _ in range(200):
        ref = domain.new_reference()
        assert len(ref) == domain.REFERENCE_LENGTH == 10
        assert ref.startswith("CP")
        assert not AMBIGUOUS & set(ref[2:])
        assert domain.is_reference(ref)


def test_reference_alphabet_has_no_look_alikes() -> None:
    assert not AMBIGUOUS & set(domain.REFERENCE_ALPHABET)
    assert len(set(domain.REFERENCE_ALPHABET)) == len(domain.REFERENCE_ALPHABET) == 32


def test_references_are_drawn_at_random() -> None:
    drawn = {domain.new_reference() for _ in range(2000)}
    assert len(drawn) == 2000
    assert {c for ref in drawn for c in ref[2:]} == set(domain.REFERENCE_ALPHABET)


@given(st.text(alphabet="0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=8, max_size=8))
def test_is_reference_accepts_exactly_the_alphabet(body: str) -> None:
    assert domain.is_reference("CP" + body) == (not AMBIGUOUS & set(body))


@given(st.text(max_size=12), st.text(max_size=12))
def test_reference_is_found_inside_a_bank_description(prefix: str, suffix: str) -> None:
    ref = domain.new_reference()
    text = f"{prefix}.{ref}.{suffix}".upper().replace(" ", "")
    assert ref in {m.group(0) for m in domain.REFERENCE_RE.finditer(text)}


@given(st.text(max_size=200))
def test_intent_purpose_starts_with_the_reference_and_fits(memo: str) -> None:
    ref = domain.new_reference()
    purpose = domain.intent_purpose(ref, memo)
    assert purpose.startswith(ref)
    assert len(purpose) <= 25
    assert re.fullmatch(r"[A-Za-z0-9 ._-]+", purpose)
    assert (
        decode(build_vietqr(bin="970436", account="0123456789", amount=1, purpose=purpose)).additional.purpose
        == purpose
    )


@given(st.text(max_size=200))
def test_qr_name_is_ascii_and_short(name: str) -> None:
    derived = domain.qr_name_of(name)
    assert len(derived) <= domain.QR_NAME_LIMIT
    assert derived == "" or is_printable_ascii(derived)


def test_qr_name_transliterates_vietnamese() -> None:
    assert domain.qr_name_of("Đặng Thị Thử – sạp rau") == "Dang Thi Thu sap rau"
    assert domain.qr_name_of("Sạp rau củ quả tươi sạch Bà Thử") == "Sap rau cu qua tuoi sach"
    assert domain.qr_name_of("菜摊") == ""


def test_public_ids() -> None:
    drawn = {domain.new_public_id() for _ in range(500)}
    assert len(drawn) == 500
    assert all(domain.PUBLIC_ID_RE.fullmatch(p) for p in drawn)
    assert domain.INTENT_ID_RE.fullmatch(domain.new_intent_id())


@pytest.mark.parametrize(
    ("expected", "received", "status"),
    [(100, 100, "paid"), (100, 99, "underpaid"), (100, 101, "overpaid")],
)
def test_settlement_status(expected: int, received: int, status: str) -> None:
    assert domain.settlement_status(expected, received) == status


def test_status_transitions() -> None:
    assert domain.merchant_transition_allowed("active", "suspended")
    assert domain.merchant_transition_allowed("suspended", "active")
    assert not domain.merchant_transition_allowed("closed", "active")
    assert not domain.merchant_transition_allowed("active", "active")

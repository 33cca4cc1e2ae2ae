"""Vietnamese text: NFC, ASCII transliteration, safe truncation, purpose memos."""

from __future__ import annotations

import re
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qr.text import fold, is_printable_ascii, nfc, sanitize_purpose, to_ascii, to_qr_ascii, truncate

VOWELS = "aàảãáạăằẳẵắặâầẩẫấậeèẻẽéẹêềểễếệiìỉĩíịoòỏõóọôồổỗốộơờởỡớợuùủũúụưừửữứựyỳỷỹýỵ"


def test_nfc_composes() -> None:
    decomposed = unicodedata.normalize("NFD", "Nguyễn Thị Việt")
    assert decomposed != "Nguyễn Thị Việt"
    assert nfc(decomposed) == "Nguyễn Thị Việt"
    assert nfc("plain") == "plain"


def test_d_with_stroke_becomes_d() -> None:
    assert to_ascii("Đặng Đình Đức đi chợ") == "Dang Dinh Duc di cho"


def test_every_vietnamese_vowel_loses_its_marks() -> None:
    expected = "a" * 18 + "e" * 12 + "i" * 6 + "o" * 18 + "u" * 12 + "y" * 6
    assert to_ascii(VOWELS) == expected
    assert to_ascii(VOWELS.upper()) == expected.upper()


def test_decomposed_input_transliterates_the_same() -> None:
    text = "Thành phố Hồ Chí Minh"
    assert to_ascii(unicodedata.normalize("NFD", text)) == to_ascii(text) == "Thanh pho Ho Chi Minh"


def test_truncate_never_orphans_a_combining_mark() -> None:
    decomposed = unicodedata.normalize("NFD", "ée")  # e + acute, e
    assert truncate(decomposed, 1) == ""
    assert truncate(decomposed, 2) == decomposed[:2]
    assert truncate("abc def", 4) == "abc"
    assert truncate("abc", 10) == "abc"
    with pytest.raises(ValueError, match="negative"):
        truncate("abc", -1)


def test_to_qr_ascii_collapses_spaces_and_cuts() -> None:
    assert to_qr_ascii("  Cô   Ba\tbán rau ") == "Co Ba ban rau"
    assert to_qr_ascii("Chợ Bến Thành, quầy 12", limit=15) == "Cho Ben Thanh,"


def test_sanitize_purpose() -> None:
    assert sanitize_purpose("Trả tiền hàng #123, cảm ơn!") == "Tra tien hang 123 cam on"
    assert sanitize_purpose("don_hang-1.2") == "don_hang-1.2"
    assert sanitize_purpose("x" * 40) == "x" * 25
    assert sanitize_purpose("a b c", limit=3) == "a b"
    assert sanitize_purpose("!!!") == ""


def test_is_printable_ascii() -> None:
    assert is_printable_ascii("NPS6869 ~")
    assert not is_printable_ascii("tab\there")
    assert not is_printable_ascii("Việt")


def test_fold_ignores_case_diacritics_spaces_and_punctuation() -> None:
    assert fold("Ngân hàng TMCP Đông Á") == fold("NGAN HANG TMCP DONG A") == "nganhangtmcpdonga"
    assert fold("Co-op Bank") == "coopbank"


@given(st.text(max_size=80))
def test_transliteration_is_always_ascii(text: str) -> None:
    assert to_ascii(text).isascii()
    assert is_printable_ascii(to_qr_ascii(text)) or to_qr_ascii(text) == ""


@given(st.text(max_size=80), st.integers(min_value=0, max_value=40))
def test_purpose_is_always_clean_and_bounded(text: str, limit: int) -> None:
    memo = sanitize_purpose(text, limit)
    assert len(memo) <= limit
    assert re.fullmatch(r"([A-Za-z0-9._-]+( [A-Za-z0-9._-]+)*)?", memo)


@given(st.text(max_size=60), st.integers(min_value=0, max_value=30))
def test_truncate_is_a_prefix_within_the_limit(text: str, limit: int) -> None:
    cut = truncate(text, limit)
    assert len(cut) <= limit
    assert text.startswith(cut)

"""The TLV scanner and encoder."""

from __future__ import annotations

import pytest

from qr.errors import BuildError, InvalidId, InvalidLength, LengthOverflow, Truncated
from qr.tlv import element, join, scan, values


def test_scan_returns_elements_with_offsets_and_a_map() -> None:
    elements, mapping = scan("000201" + "0103abc" + "9900")
    assert elements == [("00", "01", 0), ("01", "abc", 6), ("99", "", 13)]
    assert mapping == {"00": "01", "01": "abc", "99": ""}


def test_offsets_are_relative_to_base() -> None:
    elements, _ = scan("0102ab", base=40)
    assert elements == [("01", "ab", 40)]


def test_lengths_count_characters_not_bytes() -> None:
    elements, _ = scan("0107Đà Nẵng0002vi")
    assert elements[0][1] == "Đà Nẵng"
    assert elements[1] == ("00", "vi", 11)


@pytest.mark.parametrize(
    ("text", "error", "offset"),
    [
        ("0x02ab", InvalidId, 0),
        ("0102ab٠١02ab", InvalidId, 6),
        ("01x2ab", InvalidLength, 2),
        ("01٠٢ab", InvalidLength, 2),
        ("0105ab", LengthOverflow, 2),
        ("0102ab0", Truncated, 6),
        ("0102ab010", Truncated, 6),
    ],
)
def test_scan_faults(text: str, error: type[Exception], offset: int) -> None:
    with pytest.raises(error) as caught:
        scan(text)
    assert getattr(caught.value, "offset", None) == offset


def test_values_is_the_fast_path_and_refuses_what_scan_refuses() -> None:
    assert values("0002vi0103abc") == {"00": "vi", "01": "abc"}
    assert values("0002vi01") is None
    assert values("0002vi0002vi") is None  # a repeated id
    assert values("0099") is None
    assert values("") == {}


def test_element_and_join() -> None:
    assert element("59", "NGUYEN VAN A") == "5912NGUYEN VAN A"
    assert join([("00", "01"), ("01", "11", 6)]) == "000201010211"
    with pytest.raises(BuildError):
        element("62", "x" * 100)

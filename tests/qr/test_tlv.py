"""The TLV scanner and encoder."""

from __future__ import annotations

import pytest

from qr.errors import BuildError, InvalidId, InvalidLength, LengthOverflow, QRError, Truncated
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


@pytest.mark.parametrize(
    ("text", "base", "error", "offset", "message"),
    [
        # Exactly four characters left form a whole header, so a bad length there is a bad
        # length, not a cut-short header.
        ("0102ab01x2", 0, InvalidLength, 8, "length 'x2' of element 01 is not two digits"),
        ("0102ab01x2cd", 40, InvalidLength, 48, "length 'x2' of element 01 is not two digits"),
        ("0102ab010", 40, Truncated, 46, "element header '010' is cut short"),
        ("0102ab0x02", 40, InvalidId, 46, "element id '0x' is not two digits"),
        ("0102ab0105ab", 40, LengthOverflow, 48, "element 01 declares 5 characters but only 2 remain"),
        ("0101", 0, LengthOverflow, 2, "element 01 declares 1 characters but only 0 remain"),
        ("0199" + "x" * 98, 0, LengthOverflow, 2, "element 01 declares 99 characters but only 98 remain"),
    ],
)
def test_fault_offsets_and_messages(
    text: str, base: int, error: type[QRError], offset: int, message: str
) -> None:
    with pytest.raises(error) as caught:
        scan(text, base)
    assert type(caught.value) is error
    assert caught.value.offset == offset
    assert caught.value.message == message


def test_the_longest_value_is_99_characters() -> None:
    longest = "x" * 99
    encoded = element("62", longest)
    assert encoded == "6299" + longest
    assert scan(encoded + "0000") == ([("62", longest, 0), ("00", "", 103)], {"62": longest, "00": ""})
    assert values(encoded) == {"62": longest}
    assert join([("62", longest), ("00", "")]) == encoded + "0000"
    with pytest.raises(BuildError) as caught:
        element("62", longest + "x")
    assert caught.value.field == "62"
    assert caught.value.message == "62: value is 100 characters; an element holds at most 99"


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

"""Every structural error code, with its offset, and the shape of the error tree."""

from __future__ import annotations

import pytest

from qr import decode
from qr.crc import crc_hex
from qr.errors import (
    BuildError,
    CRCMalformed,
    CRCMismatch,
    CRCMissing,
    CRCNotLast,
    DecodeError,
    DuplicateTag,
    EmptyPayload,
    FormatIndicator,
    InvalidCharacter,
    InvalidId,
    InvalidLength,
    LengthOverflow,
    MalformedTemplate,
    QRError,
    Truncated,
)
from tests.qr.vectors import ACB_BAD_CRC, ACB_DYNAMIC


def signed(body: str) -> str:
    """Append a correct CRC element to ``body``."""
    body += "6304"
    return body + crc_hex(body)


HEAD = "000201010211"


@pytest.mark.parametrize(
    ("payload", "error", "code", "offset"),
    [
        ("", EmptyPayload, "empty", 0),
        (HEAD + "5", Truncated, "truncated", 12),
        (HEAD + "530", Truncated, "truncated", 12),
        (HEAD + "A303704", InvalidId, "invalid_id", 12),
        (HEAD + "53O3704", InvalidLength, "invalid_length", 14),
        (HEAD + "5399704", LengthOverflow, "length_overflow", 14),
        ("010211000201" + "6304ABCD", FormatIndicator, "format_indicator", 0),
        ("000202" + "6304ABCD", FormatIndicator, "format_indicator", 4),
        (HEAD + "010212" + "6304ABCD", DuplicateTag, "duplicate_tag", 12),
        (HEAD + "5802VN", CRCMissing, "crc_missing", 18),
        (HEAD + "6304ABCD5802VN", CRCNotLast, "crc_not_last", 12),
        (HEAD + "6303ABC", CRCMalformed, "crc_malformed", 14),
        (HEAD + "6304AB-D", CRCMalformed, "crc_malformed", 16),
        (HEAD + "63040x1A", CRCMalformed, "crc_malformed", 16),
        (HEAD + "5902A\ud800" + "6304ABCD", InvalidCharacter, "invalid_character", 17),
        (ACB_BAD_CRC, CRCMismatch, "crc_mismatch", 113),
        (signed(HEAD + "6205" + "01XYZ"), MalformedTemplate, "malformed_template", 18),
    ],
)
def test_each_code_and_offset(payload: str, error: type[DecodeError], code: str, offset: int) -> None:
    with pytest.raises(error) as caught:
        decode(payload)
    assert caught.value.code == code
    assert caught.value.offset == offset
    assert caught.value.message
    assert isinstance(caught.value, DecodeError)


def test_crc_mismatch_names_expected_and_found() -> None:
    with pytest.raises(CRCMismatch) as caught:
        decode(ACB_BAD_CRC)
    error = caught.value
    assert (error.expected, error.found) == ("BBB8", "BBB5")
    assert error.to_dict() == {
        "code": "crc_mismatch",
        "offset": 113,
        "message": error.message,
        "expected": "BBB8",
        "found": "BBB5",
    }


def test_crc_covers_everything_up_to_6304() -> None:
    tampered = ACB_DYNAMIC.replace("1000", "9000")
    with pytest.raises(CRCMismatch):
        decode(tampered)


@pytest.mark.parametrize(
    ("body", "tag", "reason", "offset"),
    [
        (HEAD + "6205" + "01XYZ", "62", "invalid_length", 18),
        (HEAD + "6206" + "0109ab", "62", "length_overflow", 18),
        (HEAD + "6203" + "010", "62", "truncated", 16),
        (HEAD + "6212" + "0102ab0102cd", "62", "duplicate_tag", 22),
        (HEAD + "2605" + "A0000", "26", "invalid_id", 16),
        (HEAD + "6405" + "0002v", "64", "length_overflow", 18),
        (HEAD + "3826" + "0010A000000727" + "0108" + "00069704", "38.01", "length_overflow", 36),
    ],
)
def test_malformed_templates(body: str, tag: str, reason: str, offset: int) -> None:
    with pytest.raises(MalformedTemplate) as caught:
        decode(signed(body))
    error = caught.value
    assert (error.code, error.tag, error.reason, error.offset) == ("malformed_template", tag, reason, offset)
    assert error.to_dict()["tag"] == tag


def test_the_first_malformed_template_in_payload_order_is_reported() -> None:
    with pytest.raises(MalformedTemplate) as caught:
        decode(signed(HEAD + "2603" + "xyz" + "6203" + "abc"))
    assert caught.value.tag == "26"


def test_unreserved_ids_that_are_not_tlv_are_not_fatal() -> None:
    payload = decode(signed(HEAD + "5303704" + "5802VN" + "8003046"))
    assert payload.fields["80"] == "046"


def test_structure_is_checked_before_the_crc() -> None:
    with pytest.raises(InvalidId):
        decode(HEAD + "xx" + "6304ABCD")


def test_only_text_is_decoded() -> None:
    with pytest.raises(TypeError, match="must be str"):
        decode(ACB_DYNAMIC.encode())  # type: ignore[arg-type]


def test_tree() -> None:
    for error in (EmptyPayload, CRCMismatch, MalformedTemplate, BuildError, DecodeError):
        assert issubclass(error, QRError)
        assert issubclass(error, ValueError)
    assert not issubclass(BuildError, DecodeError)


def test_str_and_dict_carry_code_and_offset() -> None:
    error = InvalidId("element id 'x1' is not two digits", offset=12)
    assert str(error) == "invalid_id at offset 12: element id 'x1' is not two digits"
    assert error.to_dict() == {
        "code": "invalid_id",
        "offset": 12,
        "message": "element id 'x1' is not two digits",
    }
    build = BuildError("amount", "must be positive")
    assert str(build) == "invalid_field: amount: must be positive"
    assert build.to_dict() == {
        "code": "invalid_field",
        "offset": None,
        "message": "amount: must be positive",
        "field": "amount",
    }

"""Errors raised by the QR codec.

Every failure is a :class:`QRError`, so a caller that only wants to know "is this usable?"
catches one type. Each error carries a stable ``code`` for machines, a character ``offset``
into the payload (``None`` when building) and a human ``message``::

    QRError                         (ValueError)
    ├── DecodeError                 structurally broken input, raised by ``decode``
    │   ├── EmptyPayload            empty               nothing to decode
    │   ├── Truncated               truncated           an element header is cut short
    │   ├── InvalidId               invalid_id          an id is not two ASCII digits
    │   ├── InvalidLength           invalid_length      a length is not two ASCII digits
    │   ├── LengthOverflow          length_overflow     a value runs past the end of its container
    │   ├── FormatIndicator         format_indicator    ``00`` is missing, not first, or not ``01``
    │   ├── DuplicateTag            duplicate_tag       a top-level id occurs twice
    │   ├── CRCMissing              crc_missing         no ``63`` element
    │   ├── CRCNotLast              crc_not_last        ``63`` is followed by more data
    │   ├── CRCMalformed            crc_malformed       ``63`` is not four hex digits
    │   ├── InvalidCharacter        invalid_character   a lone surrogate: the text has no UTF-8 form to check
    │   ├── CRCMismatch             crc_mismatch        the checksum is wrong (``expected``, ``found``)
    │   └── MalformedTemplate       malformed_template  a nested template does not parse (``tag``, ``reason``)
    └── BuildError                  invalid_field       a value given to a builder is unusable (``field``)

Codes are part of the public interface: the command line prints them, API clients match on
them, and tests pin every one. Field-level deviations that real codes in circulation have are
not errors; ``decode`` reports them as :class:`qr.vietqr.Issue` values instead.
"""

from __future__ import annotations

from typing import Any


class QRError(ValueError):
    """Base class of every error the QR codec raises."""

    code: str = "qr_error"

    def __init__(self, message: str, *, offset: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset

    def to_dict(self) -> dict[str, Any]:
        """Return the error as the JSON object the command line and API print."""
        return {"code": self.code, "offset": self.offset, "message": self.message}

    def __str__(self) -> str:
        if self.offset is None:
            return f"{self.code}: {self.message}"
        return f"{self.code} at offset {self.offset}: {self.message}"


class DecodeError(QRError):
    """The payload is structurally broken and cannot be trusted at all."""

    code = "decode_error"


class EmptyPayload(DecodeError):
    """The payload is empty."""

    code = "empty"


class Truncated(DecodeError):
    """An element header (two-digit id and two-digit length) is cut short."""

    code = "truncated"


class InvalidId(DecodeError):
    """An element id is not two ASCII digits."""

    code = "invalid_id"


class InvalidLength(DecodeError):
    """An element length is not two ASCII digits."""

    code = "invalid_length"


class LengthOverflow(DecodeError):
    """An element's declared length runs past the end of its container."""

    code = "length_overflow"


class FormatIndicator(DecodeError):
    """The payload format indicator ``00`` is missing, not first, or not ``01``."""

    code = "format_indicator"


class DuplicateTag(DecodeError):
    """A top-level id occurs more than once."""

    code = "duplicate_tag"


class CRCMissing(DecodeError):
    """The payload has no CRC element ``63``."""

    code = "crc_missing"


class CRCNotLast(DecodeError):
    """The CRC element ``63`` is followed by more data."""

    code = "crc_not_last"


class CRCMalformed(DecodeError):
    """The CRC element is not ``6304`` followed by four hex digits."""

    code = "crc_malformed"


class InvalidCharacter(DecodeError):
    """The payload holds a character with no UTF-8 encoding, so its CRC cannot be computed."""

    code = "invalid_character"


class CRCMismatch(DecodeError):
    """The CRC in the payload does not match the data it covers."""

    code = "crc_mismatch"

    def __init__(self, message: str, *, offset: int, expected: str, found: str) -> None:
        super().__init__(message, offset=offset)
        self.expected = expected
        self.found = found

    def to_dict(self) -> dict[str, Any]:
        """Return the error with the expected and found checksums."""
        out = super().to_dict()
        out["expected"] = self.expected
        out["found"] = self.found
        return out


class MalformedTemplate(DecodeError):
    """A nested template (26-51, 62, 64, a VietQR beneficiary) does not parse as TLV.

    ``tag`` is the template's dotted path and ``reason`` the structural code of the fault
    inside it (``invalid_id``, ``length_overflow``, ``duplicate_tag`` ...).
    """

    code = "malformed_template"

    def __init__(self, message: str, *, offset: int, tag: str, reason: str) -> None:
        super().__init__(message, offset=offset)
        self.tag = tag
        self.reason = reason

    def to_dict(self) -> dict[str, Any]:
        """Return the error with the template's tag and the inner reason."""
        out = super().to_dict()
        out["tag"] = self.tag
        out["reason"] = self.reason
        return out


class BuildError(QRError):
    """A value passed to a builder is unusable; ``field`` names the argument at fault."""

    code = "invalid_field"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field

    def to_dict(self) -> dict[str, Any]:
        """Return the error with the offending field's name."""
        out = super().to_dict()
        out["field"] = self.field
        return out

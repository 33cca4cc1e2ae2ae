"""EMVCo TLV: scan and build ``id length value`` elements.

An element is a two-digit id, a two-digit length and that many characters of value. Lengths
count characters, not bytes, so the scanner works on ``str`` indexes and never encodes.

The scanner is a single pass over the string with one dictionary look-up per element: the
four-character header maps straight to its id and length. There is no regular expression and
no ``int()`` call on the hot path, which is what keeps ``decode`` several times faster than
the usual Python parsers. The look-up also rejects non-ASCII digits such as ``"٠١"``, which
``str.isdigit`` would accept.

Elements are plain ``(id, value, offset)`` tuples: they are built for every element of every
payload, and a named tuple costs ten times as much to create.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NoReturn

from qr.errors import BuildError, InvalidId, InvalidLength, LengthOverflow, Truncated

__all__ = ["Element", "element", "join", "scan", "values"]

Element = tuple[str, str, int]
"""One scanned element: ``(id, value, offset)``; ``offset`` is where its id starts."""

_HEADERS: dict[str, tuple[str, int]] = {
    f"{t:02d}{n:02d}": (f"{t:02d}", n) for t in range(100) for n in range(100)
}
"""Every valid four-character header mapped to its id and length: one look-up per element."""
_DIGITS = frozenset("0123456789")


def scan(text: str, base: int = 0) -> tuple[list[Element], dict[str, str]]:
    """Split ``text`` into elements, offsets counted from ``base``, and map ids to values.

    The map has fewer entries than the list exactly when an id repeats. Raises ``Truncated``,
    ``InvalidId``, ``InvalidLength`` or ``LengthOverflow`` at the first structural fault.
    """
    out: list[Element] = []
    values: dict[str, str] = {}
    append = out.append
    headers = _HEADERS
    size = len(text)
    i = 0
    while i < size:
        header = headers.get(text[i : i + 4])
        if header is None:
            _raise_header(text, i, base)
        tag, length = header
        start = i + 4
        end = start + length
        if end > size:
            _raise_overflow(tag, length, size - start, base + i + 2)
        value = text[start:end]
        append((tag, value, base + i))
        values[tag] = value
        i = end
    return out, values


def values(text: str) -> dict[str, str] | None:
    """Map the ids of ``text`` to their values, or return ``None`` if it is not clean TLV.

    This is the fast path for nested templates: no offsets, no exceptions. A ``None`` (bad
    header, overflow or a repeated id) sends the caller to :func:`scan` for the precise error.
    """
    out: dict[str, str] = {}
    headers = _HEADERS
    size = len(text)
    count = i = 0
    while i < size:
        header = headers.get(text[i : i + 4])
        if header is None:
            return None
        start = i + 4
        end = start + header[1]
        if end > size:
            return None
        out[header[0]] = text[start:end]
        count += 1
        i = end
    return out if len(out) == count else None


def _raise_overflow(tag: str, length: int, remaining: int, offset: int) -> NoReturn:
    raise LengthOverflow(
        f"element {tag} declares {length} characters but only {max(remaining, 0)} remain", offset=offset
    )


def _raise_header(text: str, i: int, base: int) -> NoReturn:
    """Raise the precise error for a bad element header starting at ``i``."""
    tag = text[i : i + 2]
    if not all(ch in _DIGITS for ch in tag):
        raise InvalidId(f"element id {tag!r} is not two digits", offset=base + i)
    if len(text) - i < 4:
        raise Truncated(f"element header {text[i:]!r} is cut short", offset=base + i)
    raise InvalidLength(
        f"length {text[i + 2 : i + 4]!r} of element {tag} is not two digits", offset=base + i + 2
    )


def element(tag: str, value: str) -> str:
    """Return one encoded element, refusing values longer than 99 characters."""
    if len(value) > 99:
        raise BuildError(tag, f"value is {len(value)} characters; an element holds at most 99")
    return f"{tag}{len(value):02d}{value}"


def join(elements: Iterable[tuple[str, str] | Element]) -> str:
    """Encode ``(id, value, ...)`` pairs back into a TLV string, in the order given."""
    return "".join(element(e[0], e[1]) for e in elements)

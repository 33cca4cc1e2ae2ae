"""Vietnamese text for QR fields.

Text is kept as Unicode NFC. QR fields other than the language template (64) must be ASCII,
so Vietnamese is transliterated for them: every diacritic is removed and đ/Đ, which is a
separate letter rather than a d with a mark and so survives decomposition, becomes d/D.
Truncation never splits a base letter from a combining mark, and the purpose memo (62-08)
keeps only the characters every banking app accepts.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = [
    "PURPOSE_LIMIT",
    "fold",
    "is_printable_ascii",
    "nfc",
    "sanitize_purpose",
    "to_ascii",
    "to_qr_ascii",
    "truncate",
]

PURPOSE_LIMIT = 25

# Letters that carry no decomposable diacritic, so NFD alone would drop them entirely.
_LETTERS = str.maketrans({"đ": "d", "Đ": "D", "ð": "d", "Ð": "D", "ł": "l", "Ł": "L", "ø": "o", "Ø": "O"})
_PURPOSE_DISALLOWED = re.compile(r"[^A-Za-z0-9 ._-]+")
_SPACES = re.compile(r"\s+")
_NOT_ALNUM = re.compile(r"[^0-9a-z]+")


def nfc(text: str) -> str:
    """Return ``text`` in Unicode normalisation form C."""
    if text.isascii():
        return text
    return unicodedata.normalize("NFC", text)


def to_ascii(text: str) -> str:
    """Transliterate ``text`` to ASCII: đ/Đ become d/D and every other diacritic is removed.

    Characters with no ASCII counterpart (emoji, CJK) are dropped.
    """
    if text.isascii():
        return text
    decomposed = unicodedata.normalize("NFKD", text.translate(_LETTERS))
    return "".join(ch for ch in decomposed if ch.isascii())


def truncate(text: str, limit: int) -> str:
    """Cut ``text`` to at most ``limit`` characters without orphaning a combining mark."""
    if limit < 0:
        raise ValueError("limit must not be negative")
    if len(text) <= limit:
        return text
    cut = limit
    # Back off so a base letter is never separated from the marks that follow it.
    while cut > 0 and unicodedata.combining(text[cut]):
        cut -= 1
    return text[:cut].rstrip()


def to_qr_ascii(text: str, limit: int | None = None) -> str:
    """Return ``text`` as single-spaced printable ASCII for a QR field, cut to ``limit``."""
    ascii_text = _SPACES.sub(" ", to_ascii(nfc(text))).strip()
    ascii_text = "".join(ch for ch in ascii_text if " " <= ch <= "~")
    return ascii_text if limit is None else truncate(ascii_text, limit)


def sanitize_purpose(text: str, limit: int = PURPOSE_LIMIT) -> str:
    """Return a purpose memo of letters, digits, space, ``.``, ``-`` and ``_`` only.

    Other characters become spaces, runs of spaces collapse, and the result is cut to
    ``limit`` characters at most.
    """
    cleaned = _PURPOSE_DISALLOWED.sub(" ", to_ascii(nfc(text)))
    return truncate(_SPACES.sub(" ", cleaned).strip(), limit)


def is_printable_ascii(text: str) -> bool:
    """Tell whether every character of ``text`` is printable ASCII (space to tilde)."""
    return text.isascii() and text.isprintable()


def fold(text: str) -> str:
    """Return a key for matching names regardless of case, diacritics, spaces and punctuation."""
    return _NOT_ALNUM.sub("", to_ascii(nfc(text)).lower())

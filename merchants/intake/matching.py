"""Find payment-intent references in the free text of a bank transfer.

A buyer's banking app puts the QR's purpose into the transfer's description, and banks then
decorate it: ``MBVCB.3312.CP7K2M9QXA.thanh toan``, ``CP7K2 M9QXA`` split by a line wrap,
``cp7k2m9qxa`` lower-cased, ``IBFT CP7K2M9QXA FT26336...``. So the text is folded (spaces
removed, upper-cased) and every run of ``CP`` plus eight characters of the reference alphabet
is a candidate, wherever it starts, overlapping ones included; the caller keeps the first
candidate that is an open intent. The alphabet has no 0, O, 1 or I, so a candidate cannot
be a misread digit, and a reference that is not an open intent costs one indexed lookup.

Pure: no database, no Flask.
"""

from __future__ import annotations

import re

from merchants.domain import REFERENCE_ALPHABET

PREFIX = "CP"
LENGTH = 8
_CANDIDATE = re.compile(rf"(?=({PREFIX}[{re.escape(REFERENCE_ALPHABET)}]{{{LENGTH}}}))")
_SPACE = re.compile(r"\s+")
MAX_CANDIDATES = 8


def fold(text: str) -> str:
    """Remove white space and upper-case ``text``, as references are compared."""
    return _SPACE.sub("", text).upper()


def candidates(*texts: str | None) -> list[str]:
    """Return the distinct references found in ``texts``, in order of appearance."""
    found: list[str] = []
    for text in texts:
        if not text:
            continue
        for match in _CANDIDATE.finditer(fold(text)):
            ref = match.group(1)
            if ref not in found:
                found.append(ref)
            if len(found) >= MAX_CANDIDATES:
                return found
    return found

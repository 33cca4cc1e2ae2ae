"""Finding ledger references in the noisy text banks put on statement lines.

Banks and apps wrap the reference a payer typed: ``MBVCB.3312.CP7K2M9QXA.thanh toan``,
``cp7k 2m9qxa``, ``IBFT 677760.050523.080001``. A reference's *key* is its letters and
digits in upper case, so case, spaces and punctuation never matter. A line offers keys from:

* its line id (rank 0) and its whole reference field (rank 1);
* every token of letters and digits in the reference and description that is at least
  ``min_token`` long (rank 2), and two or three adjacent tokens joined (rank 3), which heals
  references a bank broke with a space or a dot;
* the configured patterns found anywhere in the line's letters and digits, even glued to a
  bank's prefix or suffix (rank 3).

A lower rank is stronger evidence, and breaks ties when several items match.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from qr.text import to_ascii

MAX_JOINED = 3
_TOKEN = re.compile(r"[0-9A-Z]+")
_NOT_KEY = re.compile(r"[^0-9A-Z]+")


def reference_key(value: str) -> str:
    """Return the matching key of a reference: its ASCII letters and digits in upper case."""
    if value.isascii() and value.isalnum():
        return value if value.isupper() or value.isdigit() else value.upper()
    return _NOT_KEY.sub("", value.upper())


def compile_patterns(patterns: Sequence[str]) -> list[re.Pattern[str]]:
    """Compile reference patterns to find every, even overlapping, occurrence."""
    return [re.compile(f"(?=({p}))") for p in patterns]


def line_keys(
    line_id: str, reference: str, description: str, *, min_token: int, patterns: Sequence[re.Pattern[str]]
) -> dict[str, int]:
    """Return the keys a statement line offers, each with the rank of its evidence (lower is stronger)."""
    keys = {reference_key(line_id): 0}
    if reference:
        keys.setdefault(reference_key(reference), 1)
    tokens = _TOKEN.findall(f"{reference} {description}".upper())
    count = len(tokens)
    for i, token in enumerate(tokens):
        if len(token) >= min_token:
            keys.setdefault(token, 2)
        joined = token
        for j in range(i + 1, min(i + MAX_JOINED, count)):
            joined += tokens[j]
            if len(joined) >= min_token:
                keys.setdefault(joined, 3)
    if patterns:
        compact = "".join(tokens)
        for pattern in patterns:
            for found in pattern.finditer(compact):
                keys.setdefault(found.group(1), 3)
    keys.pop("", None)
    return keys


def fuzzy_text(reference: str, description: str) -> str:
    """Return a line's reference and description as one key-like string for fuzzy scoring."""
    return _NOT_KEY.sub("", to_ascii(f"{reference} {description}").upper())

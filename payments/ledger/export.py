"""The ledger export format: JSON Lines of entries, each checkpoint after the entry completing it.

::

    {"type":"entry","index":0,"leaf":{...canonical leaf...}}
    {"type":"entry","index":1,"leaf":{...}}
    {"type":"checkpoint","note":"<signed tlog-checkpoint note for size 2>"}
    ...

Entries come in index order. A checkpoint line comes right after the entry that completes its
size, so its size equals the number of entries before it; sizes never decrease. The writer
(the database export, :mod:`payments.ledger.entries`), the database audit
(:mod:`payments.ledger.audit`) and the offline verifier (:mod:`payments.ledger.verify`) all use
this module, which, like the verifier, needs only the standard library.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from payments.ledger.canonical import canonical_json

__all__ = ["checkpoint_line", "entry_line", "interleave"]


def entry_line(index: int, leaf: Mapping[str, Any] | bytes) -> str:
    """Return the export line for one entry; ``leaf`` is the leaf or its canonical bytes."""
    if isinstance(leaf, bytes):
        if not leaf.startswith(b'{"index":%d,' % index):
            raise ValueError(f"leaf bytes do not start with index {index}")
        body = leaf.decode("utf-8")
    else:
        if leaf.get("index") != index:
            raise ValueError(f"leaf index {leaf.get('index')!r} differs from line index {index}")
        body = canonical_json(dict(leaf)).decode("utf-8")
    return f'{{"type":"entry","index":{int(index)},"leaf":{body}}}\n'


def checkpoint_line(note: str) -> str:
    """Return the export line for one signed checkpoint note."""
    return json.dumps({"type": "checkpoint", "note": note}, ensure_ascii=False, separators=(",", ":")) + "\n"


def interleave(
    entries: Iterable[tuple[int, Mapping[str, Any] | None]], checkpoints: Sequence[tuple[int, str]]
) -> Iterator[str]:
    """Yield export lines: each entry (``(index, leaf)``), then the checkpoints its index completes.

    An entry whose leaf is None is not written, but still places the checkpoints after it; the
    database audit uses that to check entries beyond what it exports.
    """
    pos = 0
    for index, leaf in entries:
        if leaf is not None:
            yield entry_line(index, leaf)
        while pos < len(checkpoints) and checkpoints[pos][0] == index + 1:
            yield checkpoint_line(checkpoints[pos][1])
            pos += 1

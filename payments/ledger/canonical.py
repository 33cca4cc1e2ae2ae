"""Canonical JSON and the ledger leaf schema, the contract between the book and the log.

Canonical JSON is what gets hashed, so one value has exactly one encoding:

* object keys sorted by Unicode code point, separators ``,`` and ``:``, no other whitespace;
* UTF-8 with non-ASCII characters written as themselves (``ensure_ascii=False``);
* strings must already be NFC: they are written as given, never normalised, and a string that
  is not NFC is refused rather than silently changed;
* only ``dict`` (string keys), ``list``, ``str``, ``int``, ``bool`` and ``None``; a float, NaN,
  a tuple, a ``Decimal`` or a ``datetime`` is a ``ValueError``.

A leaf is the canonical JSON of one committed ledger transaction (version ``1``)::

    {"v": 1,
     "index": 41,                        log index, from 0 with no gaps
     "prev": "<64 hex>",                 leaf hash of entry index-1; 64 zeros for index 0
     "tx": "TX-...",                     transaction public id
     "key": "...",                       idempotency key
     "kind": "payout",
     "memo": "...",
     "occurred_at": "2026-11-26T22:54:22.123456Z",   UTC, microseconds, Z
     "metadata": {...},                  reference keys only (METADATA_KEYS), short ASCII values
     "postings": [{"account": "program:TCXH:budget", "amount": -150000},
                  {"account": "payouts:clearing", "amount": 150000}],
     "reverses": "TX-..." | null}

Amounts are integer dong, positive for a debit and negative for a credit; a leaf is balanced
when it has at least two postings, none of them zero, summing to zero. Postings keep the order
they are given in. An attestation (kind ``attestation``) moves no money: it has no postings and
seals a digest in its metadata, for example that of a reconciliation report. ``index`` and
``prev`` chain every leaf to its predecessor, so an offline verifier can name the exact entry
that was edited, removed, inserted or moved, not only the checkpoint whose root no longer
matches.

A leaf is public and permanent: it carries references and opaque ids only, never a name, a
national id, a phone number or a bank account number. So the metadata a writer may put in a
leaf is an allow-list: the reference keys of :data:`METADATA_KEYS`, each holding a non-negative
integer or 1 to 100 printable ASCII characters without spaces. Free text has no place there: a
memo is the only text of a leaf. The verifier does not re-check the allow-list; it judges what
was signed.

The members a transaction fixes when it is posted (``CONTENT_KEYS``) sort between ``index`` and
``prev``, so the book stores them once, checked, with :func:`leaf_content`, and the sequencer
adds index, prev, reverses and tx with :func:`assemble_leaf`; the result is byte for byte
:func:`leaf_bytes` of :func:`build_leaf`.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "ATTESTATION",
    "CONTENT_KEYS",
    "GENESIS_PREV",
    "GENESIS_PREV_HASH",
    "LEAF_KEYS",
    "LEAF_VERSION",
    "METADATA_KEYS",
    "METADATA_VALUE",
    "assemble_leaf",
    "build_leaf",
    "canonical_json",
    "check_leaf",
    "format_timestamp",
    "leaf_bytes",
    "leaf_content",
]

LEAF_VERSION = 1
GENESIS_PREV = "0" * 64
"""The ``prev`` of entry 0: 32 zero bytes in hex."""
GENESIS_PREV_HASH = bytes.fromhex(GENESIS_PREV)
LEAF_KEYS = frozenset(
    {"v", "index", "prev", "tx", "key", "kind", "memo", "occurred_at", "metadata", "postings", "reverses"}
)
ATTESTATION = "attestation"
"""The kind of a leaf that moves no money and has no postings."""

METADATA_KEYS = frozenset(
    {
        "bank_txn_id",  # the bank's transaction id: the statement line that shows the movement
        "batch",  # a payout batch's public id
        "checkpoint_size",  # the tree size a sealed report was computed against
        "connector",  # the bank-notification connector that reported a payment
        "connector_txn_id",  # a bank feed's own id for a notification, where it differs
        "funding_ref",  # the reference of a program's funding
        "intent",  # a payment intent's reference (CP...)
        "merchant",  # a merchant's public id
        "payout_ref",  # a payout item's reference: the bank rail's idempotency key
        "period",  # a benefit period, YYYY-MM
        "program",  # a benefit program's code
        "reason_code",  # why a correction was made (e.g. returned)
        "receipt",  # a payout receipt's code
        "reconciliation",  # a reconciliation's public id
        "report_digest",  # SHA-256 (hex) of a sealed report
        "retry_of",  # the payout reference that this payout sends again
    }
)
"""The only keys a writer may put in a leaf's metadata."""
METADATA_VALUE = re.compile(r"[!-~]{1,100}")
"""What a string value in leaf metadata may be: printable ASCII without spaces."""
_MAX_INT = 2**63 - 1  # what the database can store

_TIMESTAMP = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z")
_HEX64 = re.compile(r"[0-9a-f]{64}")


def _nfc(s: str) -> bool:
    return s.isascii() or unicodedata.is_normalized("NFC", s)


def _nodes(value: object, path: str) -> Iterator[tuple[str, object]]:
    """Yield ``(path, node)`` for a JSON-like value and everything inside it, depth first.

    An explicit stack, not recursion: a hostile document nested a thousand levels deep is
    reported like any other, instead of exhausting Python's stack.
    """
    stack = [(path, value)]
    while stack:
        where, node = stack.pop()
        yield where, node
        if isinstance(node, dict):
            stack.extend((f"{where}.{key}", item) for key, item in reversed(node.items()))
        elif isinstance(node, list):
            stack.extend((f"{where}[{i}]", item) for i, item in reversed(list(enumerate(node))))


def _check_value(value: object, path: str) -> None:
    for where, node in _nodes(value, path):
        if isinstance(node, str):
            if not _nfc(node):
                raise ValueError(f"{where}: string is not Unicode NFC")
        elif node is None or isinstance(node, bool | int | list):
            continue
        elif isinstance(node, float):
            raise ValueError(f"{where}: floats are not allowed in canonical JSON (got {node!r})")
        elif isinstance(node, dict):
            for key in node:
                if not isinstance(key, str):
                    raise ValueError(f"{where}: object key {key!r} is {type(key).__name__}, not str")
                if not _nfc(key):
                    raise ValueError(f"{where}: object key {key!r} is not Unicode NFC")
        else:
            raise ValueError(f"{where}: {type(node).__name__} is not allowed in canonical JSON")


def _valid(value: object) -> bool:
    """Tell quickly whether ``value`` is encodable; :func:`_check_value` explains why not."""
    stack = [value]
    while stack:
        node = stack.pop()
        kind = type(node)
        if kind is str:
            if not (node.isascii() or unicodedata.is_normalized("NFC", node)):  # type: ignore[attr-defined,arg-type]
                return False
        elif kind is dict:
            for k, v in node.items():  # type: ignore[attr-defined]
                if type(k) is not str or not (k.isascii() or unicodedata.is_normalized("NFC", k)):
                    return False
                stack.append(v)
        elif kind is list:
            stack.extend(node)  # type: ignore[arg-type]
        elif not (node is None or kind is int or kind is bool):
            return False
    return True


def canonical_json(obj: object) -> bytes:
    """Encode ``obj`` as canonical JSON bytes."""
    if not _valid(obj):
        # The slow walk names the offending path (and accepts int subclasses such as enums).
        _check_value(obj, "$")
    try:
        return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"string is not encodable as UTF-8: {exc.reason}") from None


def leaf_bytes(leaf: Mapping[str, Any]) -> bytes:
    """Return the bytes of a leaf that the log hashes."""
    return canonical_json(dict(leaf))


def format_timestamp(moment: datetime) -> str:
    """Format an aware datetime as the leaf's RFC 3339 UTC form with microseconds."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("occurred_at must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _nonempty_str(leaf: Mapping[str, Any], key: str, problems: list[str]) -> None:
    value = leaf.get(key)
    if type(value) is not str or not value:
        problems.append(f"{key}: must be a non-empty string")


def _check_metadata(value: object, path: str, problems: list[str]) -> None:
    # Only the JSON types matter here; string normalisation is the writer's duty.
    for where, node in _nodes(value, path):
        if isinstance(node, dict):
            bad = [k for k in node if not isinstance(k, str)]
            problems.extend(f"{where}: object key {k!r} is not a string" for k in bad)
        elif isinstance(node, float):
            problems.append(f"{where}: floats are not allowed (got {node!r})")
        elif not (node is None or isinstance(node, str | int | list)):
            problems.append(f"{where}: {type(node).__name__} is not a JSON value")


_FLAT = (str, int)


def check_leaf(leaf: object) -> list[str]:
    """Return what is wrong with a version 1 leaf; an empty list means well-formed and balanced.

    Unicode normalisation is not re-checked: :func:`canonical_json` refuses non-NFC text when
    a leaf is written, and a verifier judges what was signed, not how it was typed.
    """
    if not isinstance(leaf, dict):
        return [f"leaf must be a JSON object, not {type(leaf).__name__}"]
    problems: list[str] = []
    keys = leaf.keys()
    if keys != LEAF_KEYS:
        missing = sorted(LEAF_KEYS - keys)
        extra = sorted(keys - LEAF_KEYS)
        if missing:
            problems.append(f"missing fields: {', '.join(missing)}")
        if extra:
            problems.append(f"unknown fields: {', '.join(map(str, extra))}")
    v = leaf.get("v")
    if not (type(v) is int and v == LEAF_VERSION):
        problems.append(f"v: must be {LEAF_VERSION}, not {v!r}")
    index = leaf.get("index")
    if not (type(index) is int and index >= 0):
        problems.append(f"index: must be a non-negative integer, not {index!r}")
    prev = leaf.get("prev")
    if type(prev) is not str or not _HEX64.fullmatch(prev):
        problems.append("prev: must be 64 lowercase hex digits")
    elif index == 0 and prev != GENESIS_PREV:
        problems.append("prev: must be 64 zeros for index 0")
    _nonempty_str(leaf, "tx", problems)
    _nonempty_str(leaf, "key", problems)
    _nonempty_str(leaf, "kind", problems)
    memo = leaf.get("memo")
    if type(memo) is not str:
        problems.append("memo: must be a string")
    occurred_at = leaf.get("occurred_at")
    if type(occurred_at) is not str or not _TIMESTAMP.fullmatch(occurred_at):
        problems.append(
            "occurred_at: must be RFC 3339 UTC with microseconds and Z, like 2026-11-26T22:54:22.123456Z"
        )
    else:
        try:
            datetime.fromisoformat(occurred_at[:-1])
        except ValueError:
            problems.append(f"occurred_at: {occurred_at} is not a real instant")
    metadata = leaf.get("metadata")
    if not isinstance(metadata, dict):
        problems.append("metadata: must be a JSON object")
    elif metadata and not all(type(k) is str and type(v) in _FLAT for k, v in metadata.items()):
        # A flat object of strings and integers (every posted leaf's) has nothing to walk.
        _check_metadata(metadata, "metadata", problems)
    reverses = leaf.get("reverses")
    if reverses is not None and (type(reverses) is not str or not reverses):
        problems.append("reverses: must be a transaction id or null")
    problems.extend(_posting_problems(leaf.get("postings"), leaf.get("kind") == ATTESTATION))
    return problems


def _posting_problems(postings: object, attestation: bool) -> list[str]:
    if not isinstance(postings, list):
        return ["postings: must be a list"]
    problems: list[str] = []
    if attestation:
        return [] if not postings else [f"postings: an {ATTESTATION} moves no money and has no postings"]
    if len(postings) < 2:
        problems.append(f"postings: a transaction needs at least 2 postings, not {len(postings)}")
    total = 0
    for i, posting in enumerate(postings):
        if not isinstance(posting, dict) or posting.keys() != {"account", "amount"}:
            problems.append(f"postings[{i}]: must be an object with exactly account and amount")
            continue
        account = posting["account"]
        amount = posting["amount"]
        if type(account) is not str or not account:
            problems.append(f"postings[{i}].account: must be a non-empty string")
        if type(amount) is not int:
            problems.append(f"postings[{i}].amount: must be an integer, not {amount!r}")
        elif amount == 0:
            problems.append(f"postings[{i}].amount: must not be zero")
        else:
            total += amount
    if not problems and total != 0:
        problems.append(f"postings: amounts sum to {total}, not 0 (unbalanced)")
    return problems


def _plain(value: Any) -> Any:
    # A StrEnum member is a str subclass; the leaf holds its plain value.
    return str(value) if isinstance(value, str) else value


def _postings(postings: Iterable[tuple[str, int] | Mapping[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for posting in postings:
        if isinstance(posting, Mapping):
            account, amount = posting["account"], posting["amount"]
        else:
            account, amount = posting
        out.append({"account": _plain(account), "amount": amount})
    return out


def build_leaf(
    *,
    index: int,
    prev: bytes | str,
    tx: str,
    key: str,
    kind: str,
    memo: str,
    occurred_at: datetime | str,
    postings: Iterable[tuple[str, int] | Mapping[str, Any]],
    metadata: Mapping[str, Any] | None = None,
    reverses: str | None = None,
) -> dict[str, Any]:
    """Build a version 1 leaf, raising ``ValueError`` that lists every problem."""
    leaf = _leaf_dict(index, prev, tx, key, kind, memo, occurred_at, postings, metadata, reverses)
    _raise_problems(leaf, leaf)
    return leaf


def _leaf_dict(
    index: int,
    prev: bytes | str,
    tx: str,
    key: str,
    kind: str,
    memo: str,
    occurred_at: datetime | str,
    postings: Iterable[tuple[str, int] | Mapping[str, Any]],
    metadata: Mapping[str, Any] | None,
    reverses: str | None,
) -> dict[str, Any]:
    prev_hex = prev.hex() if isinstance(prev, bytes) else prev
    leaf: dict[str, Any] = {
        "v": LEAF_VERSION,
        "index": index,
        "prev": prev_hex,
        "tx": _plain(tx),
        "key": _plain(key),
        "kind": _plain(kind),
        "memo": _plain(memo),
        "occurred_at": format_timestamp(occurred_at) if isinstance(occurred_at, datetime) else occurred_at,
        "metadata": dict(metadata or {}),
        "postings": _postings(postings),
        "reverses": _plain(reverses),
    }
    return leaf


def _raise_problems(leaf: dict[str, Any], encoded_part: dict[str, Any], *, posting: bool = False) -> bytes:
    """Raise ValueError listing what is wrong with ``leaf``; return ``encoded_part`` encoded.

    ``posting`` adds the rules of what may enter the log now (the metadata allow-list), on top
    of what makes a leaf well-formed: a leaf rebuilt from rows written before a rule existed
    is still the leaf that was signed.

    Encoding is the check for floats and non-NFC text, so it is done once, on whichever part of
    the leaf the caller needs as bytes (the part must hold the metadata and all free text).
    """
    # The allow-list comes first: it refuses nested values before anything walks them.
    problems = metadata_problems(leaf["metadata"]) if posting else []
    if not problems:
        problems = check_leaf(leaf)
    encoded = b""
    if not problems:
        try:
            encoded = canonical_json(encoded_part)
        except ValueError as exc:
            problems.append(str(exc))
    if problems:
        raise ValueError("invalid ledger leaf: " + "; ".join(problems))
    return encoded


def metadata_problems(metadata: Mapping[str, Any]) -> list[str]:
    """Return why ``metadata`` may not enter a leaf; an empty list means it may."""
    problems = []
    for key, value in metadata.items():
        if key not in METADATA_KEYS:
            problems.append(
                f"metadata.{str(key)[:40]}: not a reference key a leaf may carry "
                f"(allowed: {', '.join(sorted(METADATA_KEYS))})"
            )
        elif type(value) is int:
            if not 0 <= value <= _MAX_INT:
                problems.append(f"metadata.{key}: an integer value must be between 0 and {_MAX_INT}")
        elif type(value) is not str or not METADATA_VALUE.fullmatch(value):
            problems.append(
                f"metadata.{key}: must be a non-negative integer or 1 to 100 printable ASCII characters"
            )
    return problems


# The members a transaction fixes when it is posted, in canonical (sorted) order. They sort
# between "index" and "prev", so a leaf is ``{"index":…,<content>,"prev":…,"reverses":…,"tx":…,"v":1}``
# and the book can store the content once, checked, and the log add the rest when sequencing.
CONTENT_KEYS = ("key", "kind", "memo", "metadata", "occurred_at", "postings")


def leaf_content(
    *,
    key: str,
    kind: str,
    memo: str,
    occurred_at: datetime,
    postings: Iterable[tuple[str, int] | Mapping[str, Any]],
    metadata: Mapping[str, Any] | None = None,
) -> str:
    """Check a transaction against every leaf rule; return its canonical content members."""
    leaf = _leaf_dict(0, GENESIS_PREV, "TX-0", key, kind, memo, occurred_at, postings, metadata, None)
    body = _raise_problems(leaf, {k: leaf[k] for k in CONTENT_KEYS}, posting=True)
    return body[1:-1].decode()


_PLAIN_STRING = re.compile(r"[ !#-\[\]-~]*")  # printable ASCII without '"' and '\\': written as is


def _json_string(value: str) -> str:
    return f'"{value}"' if _PLAIN_STRING.fullmatch(value) else json.dumps(value, ensure_ascii=False)


def assemble_leaf(index: int, prev: bytes, content: str, tx: str, reverses: str | None) -> bytes:
    """Return the canonical bytes of a leaf from content made by :func:`leaf_content`."""
    rev = "null" if reverses is None else _json_string(reverses)
    return (
        f'{{"index":{index},{content},"prev":"{prev.hex()}","reverses":{rev},'
        f'"tx":{_json_string(tx)},"v":{LEAF_VERSION}}}'
    ).encode()

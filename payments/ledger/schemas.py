"""marshmallow schemas of the ledger API."""

from __future__ import annotations

import base64
import datetime as dt
import re
from typing import Any

import marshmallow as ma

from chopay.db import MAX_ID
from chopay.fields import StrictBoolean
from payments.ledger import domain
from payments.ledger.canonical import METADATA_KEYS, METADATA_VALUE
from payments.ledger.domain import AccountKind, public_id
from qr.schemes import MAX_AMOUNT


class HexBytes(ma.fields.Field):  # type: ignore[type-arg]
    """Bytes shown as lowercase hex."""

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        return None if value is None else bytes(value).hex()


class HexList(ma.fields.Field):  # type: ignore[type-arg]
    """A list of hashes shown as lowercase hex."""

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> list[str]:
        return [bytes(v).hex() for v in value]


def _pattern(regex: re.Pattern[str], error: str) -> ma.validate.Regexp:
    """Validate a whole string against ``regex`` (anchored, as JSON Schema reads ``pattern``)."""
    return ma.validate.Regexp(f"^(?:{regex.pattern})$", error=error)


ACCOUNT_CODE = _pattern(domain.ACCOUNT_CODE, "Not an account code: 1 to 120 of A-Z a-z 0-9 . _ : -.")
NO_CONTROL = ma.validate.Regexp(r"^[^\x00-\x1f\x7f-\x9f]*$", error="Control characters are not allowed.")
SIZE = ma.validate.Range(min=1, max=MAX_ID)
INDEX = ma.validate.Range(min=0, max=MAX_ID)


class AccountIn(ma.Schema):
    code = ma.fields.String(required=True, validate=ACCOUNT_CODE)
    kind = ma.fields.String(required=True, validate=ma.validate.OneOf([k.value for k in AccountKind]))
    currency = ma.fields.String(load_default="VND", validate=ma.validate.OneOf(["VND"]))
    allow_negative = StrictBoolean(load_default=True)


class AccountOut(ma.Schema):
    id = ma.fields.Integer()
    code = ma.fields.String()
    kind = ma.fields.String()
    currency = ma.fields.String()
    allow_negative = ma.fields.Boolean()
    balance = ma.fields.Integer(metadata={"description": "Current balance in dong (debit positive)"})
    created_at = ma.fields.DateTime()


class PostingIn(ma.Schema):
    account = ma.fields.String(required=True, validate=ACCOUNT_CODE)
    amount = ma.fields.Integer(
        required=True,
        strict=True,
        validate=[
            ma.validate.Range(min=-MAX_AMOUNT, max=MAX_AMOUNT),
            ma.validate.NoneOf([0], error="A posting is never zero."),
        ],
        metadata={
            "description": "Integer dong; positive debits, negative credits; never zero",
            "not": {"enum": [0]},
        },
    )


# The reference keys a leaf may carry: ASCII ids, never names or personal data.
LeafMetadata = ma.Schema.from_dict(
    {
        key: ma.fields.String(
            validate=_pattern(METADATA_VALUE, "1 to 100 printable ASCII characters, no spaces.")
        )
        for key in sorted(METADATA_KEYS)
    },
    name="LeafMetadata",
)


class TransactionIn(ma.Schema):
    kind = ma.fields.String(
        load_default="journal",
        validate=_pattern(domain.KIND, "1 to 40 of a-z 0-9 _ . -, starting with a letter."),
    )
    memo = ma.fields.String(required=True, validate=[ma.validate.Length(max=domain.MAX_MEMO), NO_CONTROL])
    occurred_at = ma.fields.AwareDateTime(
        load_default=None,
        default_timezone=dt.UTC,
        metadata={
            "description": f"When the movement happened (default: now), between {domain.EARLIEST.year} "
            f"and {domain.LATEST.year - 1}"
        },
    )
    metadata = ma.fields.Nested(LeafMetadata, load_default=dict)
    postings = ma.fields.List(
        ma.fields.Nested(PostingIn),
        required=True,
        validate=ma.validate.Length(min=2, max=domain.MAX_POSTINGS),
    )


class ReversalIn(ma.Schema):
    reason = ma.fields.String(
        required=True, validate=[ma.validate.Length(min=1, max=domain.MAX_REASON), NO_CONTROL]
    )


class PostingOut(ma.Schema):
    account = ma.fields.String()
    amount = ma.fields.Integer()


class TransactionOut(ma.Schema):
    """A ledger transaction as the book holds it."""

    id = ma.fields.String(attribute="public_id", metadata={"description": "Public transaction id"})
    idempotency_key = ma.fields.String()
    kind = ma.fields.String()
    memo = ma.fields.String()
    occurred_at = ma.fields.DateTime()
    metadata = ma.fields.Dict(keys=ma.fields.String())
    postings = ma.fields.List(ma.fields.Nested(PostingOut))
    reverses = ma.fields.Function(
        lambda tx: public_id(tx.reverses_id) if tx.reverses_id else None, allow_none=True
    )
    log_index = ma.fields.Integer(allow_none=True, metadata={"description": "Null until sequenced"})
    created_at = ma.fields.DateTime()


class CheckpointOut(ma.Schema):
    size = ma.fields.Integer()
    root = HexBytes()
    root_base64 = ma.fields.Function(lambda cp: base64.b64encode(cp.root).decode())
    note = ma.fields.String(metadata={"description": "The C2SP signed note"})
    key_name = ma.fields.String()
    created_at = ma.fields.DateTime()


class EntryArgs(ma.Schema):
    """Entries are paged by log index, not by cursor: an index is public and stable, so an
    auditor resumes at the index after the last entry verified, from any tool."""

    from_index = ma.fields.Integer(load_default=0, validate=INDEX)
    limit = ma.fields.Integer(load_default=100, validate=ma.validate.Range(min=1, max=1000))


class EntryOut(ma.Schema):
    index = ma.fields.Integer()
    leaf = ma.fields.Dict()
    leaf_hash = HexBytes()


class EntryPage(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(EntryOut))
    next_from_index = ma.fields.Integer(allow_none=True)


class ProofArgs(ma.Schema):
    tree_size = ma.fields.Integer(
        load_default=None, validate=SIZE, metadata={"description": "Default: the latest checkpoint's size"}
    )


class InclusionOut(EntryOut):
    tree_size = ma.fields.Integer()
    proof = HexList()
    root = HexBytes()


class ConsistencyArgs(ma.Schema):
    first = ma.fields.Integer(required=True, validate=SIZE)
    second = ma.fields.Integer(
        load_default=None, validate=SIZE, metadata={"description": "Default: the latest checkpoint's size"}
    )


class ConsistencyOut(ma.Schema):
    first = ma.fields.Integer()
    second = ma.fields.Integer()
    first_root = HexBytes()
    second_root = HexBytes()
    proof = HexList()


class InstantOrSize(ma.fields.Field):  # type: ignore[type-arg]
    """A log tree size (ASCII digits) or an RFC 3339 instant with a time zone, as UTC.

    An instant so far out that it has no UTC form in Python (year 1 at +14:00) is before or
    after every transaction, so it is clamped to the first or last representable instant.
    """

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> dt.datetime | int:
        text = str(value).strip()
        if text.isascii() and text.isdigit():
            size = int(text)
            if size > MAX_ID:
                raise ma.ValidationError(f"A tree size is at most {MAX_ID}.")
            return size
        try:
            moment = dt.datetime.fromisoformat(text.upper())
        except ValueError:
            raise ma.ValidationError("Expected a log tree size or an RFC 3339 instant.") from None
        if moment.tzinfo is None:
            raise ma.ValidationError("The instant needs a time zone, e.g. 2026-11-26T10:00:00+07:00.")
        try:
            return moment.astimezone(dt.UTC)
        except OverflowError:
            return (
                dt.datetime(dt.MINYEAR, 1, 1, tzinfo=dt.UTC)
                if moment.year == dt.MINYEAR
                else dt.datetime(dt.MAXYEAR, 12, 31, 23, 59, 59, 999_999, tzinfo=dt.UTC)
            )


class BalanceArgs(ma.Schema):
    at = InstantOrSize(
        load_default=None,
        metadata={
            "description": "An RFC 3339 instant (by occurred_at) or a log tree size (an integer)",
            "oneOf": [
                {"type": "integer", "minimum": 0, "maximum": MAX_ID},
                {"type": "string", "format": "date-time"},
            ],
        },
    )


class BalanceOut(ma.Schema):
    account = ma.fields.String()
    balance = ma.fields.Integer()
    at = ma.fields.String(allow_none=True)


class VerifierKeysOut(ma.Schema):
    origin = ma.fields.String()
    keys = ma.fields.List(ma.fields.String(), metadata={"description": "C2SP vkeys; the first signs now"})

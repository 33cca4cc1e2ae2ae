"""marshmallow schemas of the ledger API."""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

import marshmallow as ma

from payments.ledger.domain import MAX_AMOUNT, AccountKind, public_id


class HexBytes(ma.fields.Field):  # type: ignore[type-arg]
    """Bytes shown as lowercase hex."""

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        return None if value is None else bytes(value).hex()


class HexList(ma.fields.Field):  # type: ignore[type-arg]
    """A list of hashes shown as lowercase hex."""

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> list[str]:
        return [bytes(v).hex() for v in value]


class AccountIn(ma.Schema):
    code = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=120))
    kind = ma.fields.String(required=True, validate=ma.validate.OneOf([k.value for k in AccountKind]))
    currency = ma.fields.String(load_default="VND", validate=ma.validate.OneOf(["VND"]))
    allow_negative = ma.fields.Boolean(load_default=True)


class AccountOut(ma.Schema):
    id = ma.fields.Integer()
    code = ma.fields.String()
    kind = ma.fields.String()
    currency = ma.fields.String()
    allow_negative = ma.fields.Boolean()
    balance = ma.fields.Integer(metadata={"description": "Current balance in dong (debit positive)"})
    created_at = ma.fields.DateTime()


class PostingIn(ma.Schema):
    account = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=120))
    amount = ma.fields.Integer(
        required=True,
        strict=True,
        validate=ma.validate.Range(min=-MAX_AMOUNT, max=MAX_AMOUNT),
        metadata={"description": "Integer dong; positive debits, negative credits; never zero"},
    )


class TransactionIn(ma.Schema):
    kind = ma.fields.String(load_default="journal", validate=ma.validate.Length(min=1, max=40))
    memo = ma.fields.String(required=True, validate=ma.validate.Length(max=500))
    occurred_at = ma.fields.AwareDateTime(load_default=None, default_timezone=dt.UTC)
    metadata = ma.fields.Dict(keys=ma.fields.String(), load_default=dict)
    postings = ma.fields.List(ma.fields.Nested(PostingIn), required=True)


class ReversalIn(ma.Schema):
    reason = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=200))


class PostingOut(ma.Schema):
    account = ma.fields.Function(lambda p: p.account.code)
    amount = ma.fields.Integer()


class TransactionOut(ma.Schema):
    """A ledger transaction, dumped from its model."""

    id = ma.fields.Function(lambda tx: public_id(tx.id), metadata={"description": "Public transaction id"})
    idempotency_key = ma.fields.String()
    kind = ma.fields.String()
    memo = ma.fields.String()
    occurred_at = ma.fields.DateTime()
    metadata = ma.fields.Dict(attribute="meta")
    postings = ma.fields.List(ma.fields.Nested(PostingOut))
    reverses = ma.fields.Function(
        lambda tx: public_id(tx.reverses_id) if tx.reverses_id else None, allow_none=True
    )
    log_index = ma.fields.Function(
        lambda tx: tx.entry.idx if tx.entry is not None else None,
        allow_none=True,
        metadata={"description": "Null until sequenced"},
    )
    created_at = ma.fields.DateTime()


class CheckpointOut(ma.Schema):
    size = ma.fields.Integer()
    root = HexBytes()
    root_base64 = ma.fields.Function(lambda cp: base64.b64encode(cp.root).decode())
    note = ma.fields.String(metadata={"description": "The C2SP signed note"})
    key_name = ma.fields.String()
    created_at = ma.fields.DateTime()


class CheckpointArgs(ma.Schema):
    after = ma.fields.Integer(
        load_default=None,
        validate=ma.validate.Range(min=0),
        metadata={"description": "Only checkpoints of a larger tree size"},
    )
    limit = ma.fields.Integer(load_default=100, validate=ma.validate.Range(min=1, max=1000))


class EntryArgs(ma.Schema):
    from_index = ma.fields.Integer(load_default=0, validate=ma.validate.Range(min=0))
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
        load_default=None,
        validate=ma.validate.Range(min=1),
        metadata={"description": "Default: the latest checkpoint's size"},
    )


class InclusionOut(EntryOut):
    tree_size = ma.fields.Integer()
    proof = HexList()
    root = HexBytes()


class ConsistencyArgs(ma.Schema):
    first = ma.fields.Integer(required=True, validate=ma.validate.Range(min=1))
    second = ma.fields.Integer(
        load_default=None,
        validate=ma.validate.Range(min=1),
        metadata={"description": "Default: the latest checkpoint's size"},
    )


class ConsistencyOut(ma.Schema):
    first = ma.fields.Integer()
    second = ma.fields.Integer()
    first_root = HexBytes()
    second_root = HexBytes()
    proof = HexList()


class InstantOrSize(ma.fields.Field):  # type: ignore[type-arg]
    """A log tree size (digits) or an RFC 3339 instant with a time zone."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> dt.datetime | int:
        text = str(value).strip()
        if text.isdigit():
            return int(text)
        try:
            moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise ma.ValidationError("Expected a log tree size or an RFC 3339 instant.") from None
        if moment.tzinfo is None:
            raise ma.ValidationError("The instant needs a time zone, e.g. 2026-11-26T10:00:00+07:00.")
        return moment


class BalanceArgs(ma.Schema):
    at = InstantOrSize(
        load_default=None,
        metadata={
            "description": "An RFC 3339 instant (by occurred_at) or a log tree size (an integer)",
            "type": "string",
        },
    )


class BalanceOut(ma.Schema):
    account = ma.fields.String()
    balance = ma.fields.Integer()
    at = ma.fields.String(allow_none=True)


class VerifierKeysOut(ma.Schema):
    origin = ma.fields.String()
    keys = ma.fields.List(ma.fields.String(), metadata={"description": "C2SP vkeys; the first signs now"})

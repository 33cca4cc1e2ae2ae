"""Pure rules of the double-entry book: what a valid transaction is.

Amounts are integer dong: positive debits, negative credits. A transaction has two or more
postings, none zero, each within the EMVCo 13-digit bound, summing to zero.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import hashlib
import json
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from payments.ledger.canonical import format_timestamp
from payments.ledger.errors import InvalidTransaction

MAX_AMOUNT = 9_999_999_999_999
CURRENCY = "VND"
MAX_KEY = 200
MAX_KIND = 40
MAX_MEMO = 500
MAX_CODE = 120


class AccountKind(enum.StrEnum):
    ASSET = "asset"
    LIABILITY = "liability"
    EQUITY = "equity"
    INCOME = "income"
    EXPENSE = "expense"


@dataclass(frozen=True)
class Posting:
    """One line of a transaction: ``amount`` dong on ``account`` (debit > 0, credit < 0)."""

    account: str
    amount: int


@dataclass(frozen=True)
class TransactionSpec:
    """What a caller asks the book to record."""

    idempotency_key: str
    kind: str
    memo: str
    postings: Sequence[Posting]
    occurred_at: dt.datetime | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    reverses: int | None = None

    def normalized(self) -> TransactionSpec:
        """Return the spec with its text in Unicode NFC, the form the book stores."""
        return dataclasses.replace(
            self,
            idempotency_key=unicodedata.normalize("NFC", self.idempotency_key),
            kind=unicodedata.normalize("NFC", self.kind),
            memo=unicodedata.normalize("NFC", self.memo),
        )

    def content_hash(self) -> str:
        """Hash what must match when the same idempotency key is replayed."""
        body = {
            "kind": self.kind,
            "memo": self.memo,
            "postings": [[p.account, p.amount] for p in self.postings],
            "occurred_at": format_timestamp(self.occurred_at) if self.occurred_at else None,
            "metadata": dict(self.metadata),
            "reverses": self.reverses,
        }
        # validate() has already checked that the metadata is canonical JSON.
        encoded = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(encoded.encode()).hexdigest()


def validate(spec: TransactionSpec) -> None:
    """Raise InvalidTransaction with a precise code if ``spec`` breaks a rule of the book."""
    _text("idempotency_key", spec.idempotency_key, MAX_KEY)
    _text("kind", spec.kind, MAX_KIND)
    if len(spec.memo) > MAX_MEMO:
        raise InvalidTransaction(
            f"memo is longer than {MAX_MEMO} characters.", code="field_invalid", field="memo"
        )
    if spec.occurred_at is not None and spec.occurred_at.tzinfo is None:
        raise InvalidTransaction("occurred_at needs a time zone.", code="field_invalid", field="occurred_at")
    if len(spec.postings) < 2:
        raise InvalidTransaction("A transaction needs at least two postings.", code="postings_too_few")
    for i, p in enumerate(spec.postings):
        if not isinstance(p.amount, int) or isinstance(p.amount, bool):
            raise InvalidTransaction(
                f"postings[{i}].amount must be an integer number of dong.",
                code="field_invalid",
                field=f"postings[{i}].amount",
            )
        if p.amount == 0:
            raise InvalidTransaction(f"postings[{i}] has a zero amount.", code="posting_zero", posting=i)
        if abs(p.amount) > MAX_AMOUNT:
            raise InvalidTransaction(
                f"postings[{i}].amount is beyond {MAX_AMOUNT:,} dong.", code="amount_out_of_range", posting=i
            )
    total = sum(p.amount for p in spec.postings)
    if total != 0:
        raise InvalidTransaction(
            f"Postings sum to {total}, not 0: debits and credits must balance.",
            code="postings_unbalanced",
            imbalance=total,
        )
    # Metadata (floats, size, personal data) is checked with every other leaf rule when the
    # service builds the leaf content.


def _text(name: str, value: str, limit: int) -> None:
    if not value or not value.strip() or len(value) > limit:
        raise InvalidTransaction(f"{name} must be 1 to {limit} characters.", code="field_invalid", field=name)


def mirror(postings: Sequence[Posting]) -> list[Posting]:
    """Return the postings that undo ``postings``."""
    return [Posting(p.account, -p.amount) for p in postings]


def net_by_account(specs: Sequence[TransactionSpec]) -> dict[str, int]:
    """Sum the postings of ``specs`` per account."""
    out: dict[str, int] = {}
    for spec in specs:
        for p in spec.postings:
            out[p.account] = out.get(p.account, 0) + p.amount
    return out


def public_id(tx_id: int) -> str:
    """Return the opaque public id of transaction row ``tx_id``."""
    return f"TX-{tx_id:010d}"


def parse_public_id(value: str) -> int | None:
    """Return the row id named by a public id, or None if it is not one."""
    if not value.startswith("TX-") or not value[3:].isdigit():
        return None
    return int(value[3:])

"""What reconciliation matches and what it concludes: pure dataclasses, no I/O.

The ledger side of a reconciliation is a list of :class:`LedgerItem`: one per ledger
transaction that moves money on the reconciled account, with its signed amount on that
account (positive into it, as on the statement: the account is an asset, so a debit) and
the references its leaf carries (``payments/ledger/canonical.py`` fixes the metadata keys).
:meth:`LedgerItem.from_leaf` builds one from a leaf.

Every statement line and every ledger item ends in exactly one :class:`Category`:

=====================  ======================================================================
``matched``            line and item(s) agree: found by bank transaction id, by reference, or
                       one bank line settling several items of equal total (many-to-one)
``suggested``          same amount, value date within the window, references alike (fuzzy):
                       an auditor must confirm it
``missing_in_ledger``  the bank moved money the ledger does not record
``missing_in_bank``    the ledger records a movement the bank does not show
``amount_mismatch``    line and item name each other but their amounts differ
``duplicate_in_bank``  a further bank line for an item another line already matched
``returned``           money back that names an earlier payout (never reversed automatically)
=====================  ======================================================================

A :class:`Match` carries each line or item with its category; its ``difference`` is what it
adds to (statement minus ledger), so the differences of all matches, plus any difference
between the opening balances, explain the closing difference exactly when the
:class:`BalanceCheck` says ``fully_explained``.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from payments.reconciliation.statements.model import StatementLine

VIETNAM = dt.timezone(dt.timedelta(hours=7), "ICT")
"""Statement dates are Vietnam dates (UTC+7, no daylight saving)."""


class LedgerKind(enum.StrEnum):
    PAYOUT = "payout"
    PAYOUT_REVERSAL = "payout_reversal"
    RECEIPT = "receipt"
    FUNDING = "funding"
    OTHER = "other"


class Category(enum.StrEnum):
    MATCHED = "matched"
    SUGGESTED = "suggested"
    MISSING_IN_LEDGER = "missing_in_ledger"
    MISSING_IN_BANK = "missing_in_bank"
    AMOUNT_MISMATCH = "amount_mismatch"
    DUPLICATE_IN_BANK = "duplicate_in_bank"
    RETURNED = "returned"


class Rule(enum.StrEnum):
    """The evidence that tied a line to ledger items."""

    BANK_TXN_ID = "bank_txn_id"
    REFERENCE = "reference"
    MANY_TO_ONE = "many_to_one"
    TOLERANT = "tolerant"


_LEAF_KINDS = {
    "payout": LedgerKind.PAYOUT,
    "payout_reversal": LedgerKind.PAYOUT_REVERSAL,
    "receipt": LedgerKind.RECEIPT,
    "payment": LedgerKind.RECEIPT,
    "funding": LedgerKind.FUNDING,
}


@dataclass(frozen=True, slots=True)
class LedgerItem:
    """A ledger transaction as seen from the reconciled account."""

    transaction: str
    """The transaction's public id (``TX-...``)."""
    log_index: int
    amount: int
    """Signed dong on the reconciled account: positive into it, as on the statement."""
    occurred: dt.date
    """The Vietnam date of the transaction's ``occurred_at``."""
    kind: LedgerKind = LedgerKind.OTHER
    payout_ref: str | None = None
    bank_txn_id: str | None = None
    connector_txn_id: str | None = None
    funding_ref: str | None = None
    intent: str | None = None
    receipt: str | None = None
    batch: str | None = None
    retry_of: str | None = None
    reason_code: str | None = None

    @classmethod
    def from_leaf(cls, leaf: Mapping[str, Any], account: str) -> LedgerItem | None:
        """Return the item a ledger leaf makes on ``account``, or None if it does not touch it."""
        postings = [p for p in leaf["postings"] if p["account"] == account]
        if not postings:
            return None
        meta = leaf.get("metadata") or {}
        kind = _LEAF_KINDS.get(str(leaf.get("kind")), LedgerKind.OTHER)
        if leaf.get("reverses") and meta.get("payout_ref") is not None:
            kind = LedgerKind.PAYOUT_REVERSAL
        moment = dt.datetime.fromisoformat(str(leaf["occurred_at"]).replace("Z", "+00:00"))

        def ref(key: str) -> str | None:
            value = meta.get(key)
            return None if value is None else str(value)

        return cls(
            transaction=str(leaf["tx"]),
            log_index=int(leaf["index"]),
            amount=sum(int(p["amount"]) for p in postings),
            occurred=moment.astimezone(VIETNAM).date(),
            kind=kind,
            payout_ref=ref("payout_ref"),
            bank_txn_id=ref("bank_txn_id"),
            connector_txn_id=ref("connector_txn_id"),
            funding_ref=ref("funding_ref"),
            intent=ref("intent"),
            receipt=ref("receipt"),
            batch=ref("batch"),
            retry_of=ref("retry_of"),
            reason_code=ref("reason_code"),
        )

    def references(self) -> tuple[str, ...]:
        """Return every reference the item can be recognised by on a statement."""
        values = (
            self.payout_ref,
            self.bank_txn_id,
            self.connector_txn_id,
            self.funding_ref,
            self.intent,
            self.receipt,
            self.retry_of,
        )
        return tuple(v for v in values if v)


@dataclass(frozen=True)
class MatchConfig:
    """Tunable limits of the matching rules; the defaults are what the service uses."""

    date_window_days: int = 3
    """Tolerant rule: how far an item's date may be from the line's value date."""
    fuzzy_threshold: int = 85
    """Tolerant rule: lowest rapidfuzz partial-ratio score (0..100) that makes a suggestion."""
    min_fuzzy_reference: int = 6
    """Tolerant rule: shorter references are too ambiguous to compare fuzzily."""
    max_candidates: int = 200
    """Tolerant rule: same-amount items examined per line (nearest dates first)."""
    max_fuzzy_comparisons: int = 2_000_000
    """Tolerant rule: comparisons in one reconciliation; lines beyond it are not examined."""
    min_token: int = 4
    """Exact rule: description tokens shorter than this are not taken for references."""
    reference_patterns: tuple[str, ...] = (r"CP[2-9A-HJ-NP-Z]{8}",)
    """Exact rule: references found anywhere in a line's letters and digits, even glued to
    other text (the intent reference ``CP`` + 8 characters without 0, O, 1 and I)."""

    def __post_init__(self) -> None:
        if self.date_window_days < 0 or not 0 <= self.fuzzy_threshold <= 100:
            raise ValueError("the date window must be >= 0 and the threshold within 0..100")
        if self.max_candidates < 1 or self.max_fuzzy_comparisons < 0 or self.min_token < 1:
            raise ValueError("candidate and comparison limits must be positive")


@dataclass(frozen=True, slots=True)
class Match:
    """One conclusion of a reconciliation: a line, items, or both, in one category."""

    category: Category
    line: StatementLine | None
    line_index: int | None
    """Position of ``line`` in the statement."""
    items: tuple[LedgerItem, ...]
    """Items this match accounts for (each item is in exactly one match)."""
    rule: Rule | None = None
    related: LedgerItem | None = None
    """The item a duplicate, a return or an unmatched line names, accounted for elsewhere."""
    score: int | None = None
    """Fuzzy score of a suggestion."""
    difference: int = 0
    """What this match adds to the statement-minus-ledger balance difference."""


@dataclass(frozen=True, slots=True)
class CategoryTotal:
    """How many matches a category holds and the money in them."""

    count: int = 0
    bank_amount: int = 0
    ledger_amount: int = 0
    difference: int = 0


@dataclass(frozen=True, slots=True)
class BalanceCheck:
    """The statement's closing balance against the ledger's, and how far matches explain it."""

    statement_opening: int
    statement_closing: int
    ledger_opening: int | None
    ledger_closing: int
    explained: int
    """Sum of every match's difference."""

    @property
    def difference(self) -> int:
        """Return statement closing minus ledger closing."""
        return self.statement_closing - self.ledger_closing

    @property
    def opening_difference(self) -> int | None:
        """Return statement opening minus ledger opening, when the ledger opening is known."""
        return None if self.ledger_opening is None else self.statement_opening - self.ledger_opening

    @property
    def unexplained(self) -> int:
        """Return the part of the difference no match and no opening difference accounts for."""
        return self.difference - self.explained - (self.opening_difference or 0)

    @property
    def fully_explained(self) -> bool:
        """Tell whether the matches account for the whole closing difference."""
        return self.unexplained == 0


@dataclass(frozen=True, slots=True)
class MatchStats:
    """How the rules went: matches per rule and the work the tolerant rule did."""

    by_rule: Mapping[Rule, int] = field(default_factory=dict)
    fuzzy_comparisons: int = 0
    not_examined: int = 0
    """Lines the tolerant rule skipped because the comparison budget ran out."""
    capped: int = 0
    """Lines with more same-amount candidates in the window than ``max_candidates``."""

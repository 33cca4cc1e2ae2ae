"""The outcome of a reconciliation: every match, the totals per category, the balance check.

Outcomes are kept in flat arrays, a few bytes per line and item; :meth:`Reconciliation.outcomes`
yields them by position for a report writer and :meth:`Reconciliation.matches` as
:class:`~payments.reconciliation.domain.Match` objects.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple

from payments.reconciliation.domain import (
    BalanceCheck,
    Category,
    CategoryTotal,
    LedgerItem,
    Match,
    MatchConfig,
    MatchStats,
    Rule,
)
from payments.reconciliation.items import LedgerItems
from payments.reconciliation.statements.model import Statement

# Categories and rules are stored as one byte each: their position here (0 = not yet decided).
CATEGORIES = (None, *Category)
CATEGORY_CODE = {c: i for i, c in enumerate(CATEGORIES) if c is not None}
RULES = (None, *Rule)
RULE_CODE = {r: i for i, r in enumerate(RULES) if r is not None}
PAIRED = (Category.MATCHED, Category.SUGGESTED, Category.AMOUNT_MISMATCH)


@dataclass(frozen=True)
class Columns:
    """What the engine concluded, by position: a category, rule and item per line."""

    line_cat: bytearray
    line_rule: bytearray
    line_item: array[int]
    groups: dict[int, tuple[int, ...]]
    related: dict[int, LedgerItem]
    scores: dict[int, int]
    missing: list[int]
    balance: BalanceCheck
    totals: dict[Category, CategoryTotal]
    stats: MatchStats


class Outcome(NamedTuple):
    """A match by positions: the line's index in the statement and the items' in the items."""

    category: Category
    line_index: int | None
    items: tuple[int, ...]
    rule: Rule | None
    related: LedgerItem | None
    score: int | None
    difference: int


class Reconciliation:
    """The outcome of matching one statement against ledger items."""

    def __init__(
        self, statement: Statement, items: LedgerItems, config: MatchConfig, outcome: Columns
    ) -> None:
        self.statement = statement
        self.items = items
        self.config = config
        self.balance = outcome.balance
        self.totals = outcome.totals
        self.stats = outcome.stats
        self._line_cat = outcome.line_cat
        self._line_rule = outcome.line_rule
        self._line_item = outcome.line_item
        self._groups = outcome.groups
        self._related = outcome.related
        self._scores = outcome.scores
        self._missing = outcome.missing

    def __len__(self) -> int:
        return len(self._line_cat) + len(self._missing)

    def outcomes(self, category: Category | None = None) -> Iterator[Outcome]:
        """Yield every match by positions, in :meth:`matches` order, without building objects.

        This is what a report writer streams to the database: line positions into the
        statement's columns and item positions into :attr:`items`.
        """
        line_amounts = self.statement.lines.amounts
        amounts = self.items.amounts
        want = None if category is None else CATEGORY_CODE[category]
        for i, code in enumerate(self._line_cat):
            if want is not None and code != want:
                continue
            cat = CATEGORIES[code]
            assert cat is not None
            group = self._groups.get(i)
            members = group if group is not None else (self._line_item[i],) if cat in PAIRED else ()
            yield Outcome(
                cat,
                i,
                members,
                RULES[self._line_rule[i]],
                self._related.get(i),
                self._scores.get(i),
                line_amounts[i] - sum(amounts[p] for p in members),
            )
        if want is None or want == CATEGORY_CODE[Category.MISSING_IN_BANK]:
            for pos in self._missing:
                yield Outcome(Category.MISSING_IN_BANK, None, (pos,), None, None, None, -amounts[pos])

    def matches(self, category: Category | None = None) -> Iterator[Match]:
        """Yield every match (or those of ``category``): lines in statement order, then missing items."""
        lines, items = self.statement.lines, self.items
        for o in self.outcomes(category):
            yield Match(
                category=o.category,
                line=None if o.line_index is None else lines[o.line_index],
                line_index=o.line_index,
                items=tuple(items[p] for p in o.items),
                rule=o.rule,
                related=o.related,
                score=o.score,
                difference=o.difference,
            )

"""The matching engine: statement lines against ledger items, deterministically.

The rules run in passes over the statement, in line order, each on what the earlier ones
left. An item is taken by at most one line; ties go to the stronger evidence, then the
nearer date, then the lower log index.

1. **Exact, by bank transaction id.** An item whose ``bank_txn_id`` or ``connector_txn_id``
   is one of the line's keys (its id first, see :mod:`.references`) and whose amount equals
   the line's: ``matched``. This pass comes first on its own so that a duplicate line that
   merely repeats a payout's reference can never take the item from the line the bank
   booked it under.
2. **Exact, by reference** (``payout_ref``, ``funding_ref``, ``intent``, ``receipt``), equal
   amount: ``matched``.
3. **Many-to-one.** One line settles several items: the unmatched items it names, or the
   unmatched items of a ``batch`` it names, all of the line's sign, summing exactly to it:
   ``matched``. This runs before the tolerant rule, because it rests on exact references
   and exact sums, and a fuzzy suggestion must not take one item of a settled batch.
4. **What the exact references still say.** A line naming an unmatched item of its sign with
   another amount: ``amount_mismatch``. Naming an item another line already matched, with
   the same amount (or by ``retry_of``, the reference a retry replaced): ``duplicate_in_bank``.
   Money in that names a payout (also one from ``history``, before the period): ``returned``.
5. **Tolerant.** Same amount, value date within ``date_window_days`` of the item's date, and a
   rapidfuzz partial-ratio of at least ``fuzzy_threshold`` between one of the item's
   references and the line's text: ``suggested``. Candidates come from an index by amount
   and date, at most ``max_candidates`` per line and ``max_fuzzy_comparisons`` in all, so the
   rule never turns quadratic; the stats say when a limit was reached.
6. Lines left are ``missing_in_ledger`` (with the item they name, if any, as ``related``);
   items left are ``missing_in_bank``.

Outcomes are kept in flat arrays (a few bytes per line and item), and :meth:`Reconciliation.matches`
builds :class:`~payments.reconciliation.domain.Match` objects on demand, so a million lines
against a million items stays well within memory.
"""

from __future__ import annotations

import bisect
from array import array
from collections.abc import Iterable, Iterator, Sequence
from typing import TypeAlias

from rapidfuzz import fuzz

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
from payments.reconciliation.references import compile_patterns, fuzzy_text, line_keys, reference_key
from payments.reconciliation.statements.model import Statement, StatementLine

Index: TypeAlias = dict[str, "int | list[int]"]

_CATEGORIES = (None, *Category)
_CODE = {c: i for i, c in enumerate(_CATEGORIES) if c is not None}
_RULES = (None, *Rule)
_RULE_CODE = {r: i for i, r in enumerate(_RULES) if r is not None}
_PAIRED = (Category.MATCHED, Category.SUGGESTED, Category.AMOUNT_MISMATCH)
UNSET = 0
_TXN, _REF, _RETRY, _BATCH, _HISTORY = 1, 2, 4, 8, 16


def _put(index: Index, key: str | None, pos: int) -> None:
    if not key:
        return
    k = reference_key(key)
    if not k:
        return
    found = index.get(k)
    if found is None:
        index[k] = pos
    elif isinstance(found, int):
        if found != pos:
            index[k] = [found, pos]
    elif found[-1] != pos:
        found.append(pos)


def _hits(index: Index, keys: dict[str, int]) -> list[tuple[int, int]]:
    """Return (rank, item position) for every item the keys name in ``index``."""
    out: list[tuple[int, int]] = []
    for key, rank in keys.items():
        found = index.get(key)
        if found is None:
            continue
        if isinstance(found, int):
            out.append((rank, found))
        else:
            out.extend((rank, p) for p in found)
    return out


def _nearest(days: list[int], lo: int, hi: int, day: int) -> Iterator[int]:
    """Yield the indexes lo..hi-1 of the sorted ``days``, nearest to ``day`` first."""
    right = bisect.bisect_left(days, day, lo, hi)
    left = right - 1
    while left >= lo or right < hi:
        if right < hi and (left < lo or days[right] - day <= day - days[left]):
            yield right
            right += 1
        else:
            yield left
            left -= 1


class Reconciliation:
    """The outcome of matching one statement against ledger items."""

    def __init__(self, engine: _Engine, balance: BalanceCheck, totals: dict[Category, CategoryTotal]) -> None:
        self.statement = engine.statement
        self.items = engine.items
        self.config = engine.config
        self.balance = balance
        self.totals = totals
        self.stats = MatchStats(
            by_rule=dict(engine.by_rule),
            fuzzy_comparisons=engine.comparisons,
            not_examined=engine.not_examined,
            capped=engine.capped,
        )
        self._line_cat = engine.line_cat
        self._line_rule = engine.line_rule
        self._line_item = engine.line_item
        self._groups = engine.groups
        self._related = engine.related
        self._scores = engine.scores
        self._missing = engine.missing_in_bank()

    def __len__(self) -> int:
        return len(self._line_cat) + len(self._missing)

    def matches(self, category: Category | None = None) -> Iterator[Match]:
        """Yield every match (or those of ``category``): lines in statement order, then missing items."""
        lines = self.statement.lines
        items = self.items
        want = None if category is None else _CODE[category]
        for i, line in enumerate(lines):
            code = self._line_cat[i]
            if want is not None and code != want:
                continue
            cat = _CATEGORIES[code]
            assert cat is not None
            members: tuple[LedgerItem, ...] = ()
            group = self._groups.get(i)
            if group is not None:
                members = tuple(items[p] for p in group)
            elif cat in _PAIRED:
                members = (items[self._line_item[i]],)
            yield Match(
                category=cat,
                line=line,
                line_index=i,
                items=members,
                rule=_RULES[self._line_rule[i]],
                related=self._related.get(i),
                score=self._scores.get(i),
                difference=line.amount - sum(m.amount for m in members),
            )
        if want is None or want == _CODE[Category.MISSING_IN_BANK]:
            for pos in self._missing:
                item = items[pos]
                yield Match(Category.MISSING_IN_BANK, None, None, (item,), difference=-item.amount)


def reconcile(
    statement: Statement,
    items: Sequence[LedgerItem],
    *,
    ledger_balance: int,
    ledger_opening: int | None = None,
    history: Iterable[LedgerItem] = (),
    config: MatchConfig | None = None,
) -> Reconciliation:
    """Match ``statement`` against ``items`` and check the closing balances.

    ``items`` are the ledger transactions on the reconciled account in the statement's
    period; ``ledger_balance`` is that account's ledger balance at the end of the period
    (and ``ledger_opening`` at its start, when known). ``history`` holds earlier items a
    line may refer back to, such as the payout a return credits back; they are not
    reconciled themselves.
    """
    engine = _Engine(statement, items, history, config or MatchConfig())
    engine.run()
    totals, explained = engine.totals()
    balance = BalanceCheck(
        statement_opening=statement.opening_balance,
        statement_closing=statement.closing_balance,
        ledger_opening=ledger_opening,
        ledger_closing=ledger_balance,
        explained=explained,
    )
    return Reconciliation(engine, balance, totals)


class _Engine:
    def __init__(
        self,
        statement: Statement,
        items: Sequence[LedgerItem],
        history: Iterable[LedgerItem],
        config: MatchConfig,
    ) -> None:
        self.statement = statement
        self.lines = statement.lines
        self.items = items
        self.config = config
        self.patterns = compile_patterns(config.reference_patterns)
        n, m = len(self.lines), len(items)
        self.line_cat = bytearray(n)
        self.line_rule = bytearray(n)
        self.line_item = array("q", [-1]) * n
        self.item_cat = bytearray(m)
        self.flags = bytearray(n)
        self.groups: dict[int, tuple[int, ...]] = {}
        self.related: dict[int, LedgerItem] = {}
        self.scores: dict[int, int] = {}
        self.by_rule: dict[Rule, int] = dict.fromkeys(Rule, 0)
        self.comparisons = self.not_examined = self.capped = 0
        self.by_txn: Index = {}
        self.by_ref: Index = {}
        self.by_retry: Index = {}
        self.by_batch: Index = {}
        for pos, item in enumerate(items):
            _put(self.by_txn, item.bank_txn_id, pos)
            _put(self.by_txn, item.connector_txn_id, pos)
            _put(self.by_ref, item.payout_ref, pos)
            _put(self.by_ref, item.funding_ref, pos)
            _put(self.by_ref, item.intent, pos)
            _put(self.by_ref, item.receipt, pos)
            _put(self.by_retry, item.retry_of, pos)
            _put(self.by_batch, item.batch, pos)
        self.history: list[LedgerItem] = [h for h in history if h.payout_ref and h.amount < 0]
        self.by_history: Index = {}
        for pos, item in enumerate(self.history):
            _put(self.by_history, item.payout_ref, pos)

    # -- bookkeeping -------------------------------------------------------------------------

    def _keys(self, line: StatementLine) -> dict[str, int]:
        return line_keys(line, min_token=self.config.min_token, patterns=self.patterns)

    def _assign(self, i: int, category: Category, rule: Rule | None, pos: int = -1) -> None:
        self.line_cat[i] = _CODE[category]
        if rule is not None:
            self.line_rule[i] = _RULE_CODE[rule]
            if category in (Category.MATCHED, Category.SUGGESTED):
                self.by_rule[rule] += 1
        if pos >= 0:
            self.line_item[i] = pos
            if category in _PAIRED:
                self.item_cat[pos] = _CODE[category]

    def _order(self, line: StatementLine, hits: Iterable[tuple[int, int]]) -> list[int]:
        """Return the hit items, best first: rank, then date distance, then log index."""
        items = self.items
        day = line.value_date
        best: dict[int, int] = {}
        for rank, pos in hits:
            if rank < best.get(pos, 99):
                best[pos] = rank
        return sorted(
            best,
            key=lambda p: (best[p], abs((items[p].occurred - day).days), items[p].log_index, p),
        )

    def _first_equal(self, line: StatementLine, hits: Iterable[tuple[int, int]]) -> int:
        items, taken = self.items, self.item_cat
        for pos in self._order(line, hits):
            if not taken[pos] and items[pos].amount == line.amount:
                return pos
        return -1

    # -- passes ------------------------------------------------------------------------------

    def run(self) -> None:
        self._by_transaction_id()
        self._by_reference()
        self._by_batch()
        self._leftover_evidence()
        self._tolerant()
        for i, code in enumerate(self.line_cat):
            if code == UNSET:
                self.line_cat[i] = _CODE[Category.MISSING_IN_LEDGER]

    def _by_transaction_id(self) -> None:
        by_txn, items, taken = self.by_txn, self.items, self.item_cat
        for i, line in enumerate(self.lines):
            found = by_txn.get(reference_key(line.line_id))
            # The common case, one item under the line's own id, needs no key extraction.
            if isinstance(found, int) and not taken[found] and items[found].amount == line.amount:
                self._assign(i, Category.MATCHED, Rule.BANK_TXN_ID, found)
                continue
            keys = self._keys(line)
            txn = _hits(by_txn, keys)
            pos = self._first_equal(line, txn)
            if pos >= 0:
                self._assign(i, Category.MATCHED, Rule.BANK_TXN_ID, pos)
                continue
            flags = _TXN if txn else 0
            if _hits(self.by_ref, keys):
                flags |= _REF
            if _hits(self.by_retry, keys):
                flags |= _RETRY
            if _hits(self.by_batch, keys):
                flags |= _BATCH
            if line.amount > 0 and _hits(self.by_history, keys):
                flags |= _HISTORY
            self.flags[i] = flags

    def _pending(self, mask: int) -> Iterator[tuple[int, StatementLine]]:
        lines, cats, flags = self.lines, self.line_cat, self.flags
        for i, flag in enumerate(flags):
            if flag & mask and cats[i] == UNSET:
                yield i, lines[i]

    def _by_reference(self) -> None:
        items, taken = self.items, self.item_cat
        for i, line in self._pending(_REF | _TXN):
            keys = self._keys(line)
            ref = _hits(self.by_ref, keys)
            pos = self._first_equal(line, ref)
            if pos >= 0:
                self._assign(i, Category.MATCHED, Rule.REFERENCE, pos)
                continue
            named = [
                p
                for p in self._order(line, ref + _hits(self.by_txn, keys))
                if not taken[p] and (items[p].amount > 0) == (line.amount > 0)
            ]
            if len(named) >= 2 and sum(items[p].amount for p in named) == line.amount:
                self._group(i, named)

    def _group(self, i: int, members: list[int]) -> None:
        ordered = tuple(sorted(members, key=lambda p: (self.items[p].log_index, p)))
        self.groups[i] = ordered
        self._assign(i, Category.MATCHED, Rule.MANY_TO_ONE)
        for p in ordered:
            self.item_cat[p] = _CODE[Category.MATCHED]

    def _by_batch(self) -> None:
        items, taken = self.items, self.item_cat
        for i, line in self._pending(_BATCH):
            keys = self._keys(line)
            for key in sorted(keys, key=lambda k: (keys[k], k)):
                found = self.by_batch.get(key)
                if found is None:
                    continue
                batch = [found] if isinstance(found, int) else found
                members = [p for p in batch if not taken[p] and (items[p].amount > 0) == (line.amount > 0)]
                if len(members) >= 2 and sum(items[p].amount for p in members) == line.amount:
                    self._group(i, members)
                    break

    def _leftover_evidence(self) -> None:
        items, taken = self.items, self.item_cat
        for i, line in self._pending(_TXN | _REF | _RETRY | _HISTORY):
            keys = self._keys(line)
            named = _hits(self.by_txn, keys) + _hits(self.by_ref, keys)
            ordered = self._order(line, named)
            same_sign = [p for p in ordered if not taken[p] and (items[p].amount > 0) == (line.amount > 0)]
            if same_sign:
                by_id = {p for _, p in _hits(self.by_txn, keys)}
                rule = Rule.BANK_TXN_ID if same_sign[0] in by_id else Rule.REFERENCE
                self._assign(i, Category.AMOUNT_MISMATCH, rule, same_sign[0])
                continue
            again = self._order(line, named + _hits(self.by_retry, keys))
            twice = [
                p for p in again if taken[p] == _CODE[Category.MATCHED] and items[p].amount == line.amount
            ]
            if twice:
                self._assign(i, Category.DUPLICATE_IN_BANK, Rule.REFERENCE)
                self.related[i] = items[twice[0]]
                continue
            if line.amount > 0:
                payouts = [items[p] for p in ordered if items[p].payout_ref and items[p].amount < 0]
                payouts += [self.history[p] for _, p in _hits(self.by_history, keys)]
                if payouts:
                    payouts.sort(key=lambda it: (it.amount != -line.amount, it.log_index))
                    self._assign(i, Category.RETURNED, Rule.REFERENCE)
                    self.related[i] = payouts[0]
                    continue
            if again:
                self.related[i] = items[again[0]]

    def _tolerant(self) -> None:
        config, items, taken = self.config, self.items, self.item_cat
        window, cap = config.date_window_days, config.max_candidates
        buckets: dict[int, tuple[list[int], list[int]]] = {}
        for pos in sorted(
            (p for p in range(len(items)) if not taken[p]),
            key=lambda p: (items[p].occurred, items[p].log_index, p),
        ):
            days, positions = buckets.setdefault(items[pos].amount, ([], []))
            days.append(items[pos].occurred.toordinal())
            positions.append(pos)
        if not buckets:
            return
        refs: dict[int, list[str]] = {}
        for i, line in enumerate(self.lines):
            if self.line_cat[i] != UNSET or line.amount not in buckets:
                continue
            if self.comparisons >= config.max_fuzzy_comparisons:
                self.not_examined += 1
                continue
            days, positions = buckets[line.amount]
            day = line.value_date.toordinal()
            lo, hi = bisect.bisect_left(days, day - window), bisect.bisect_right(days, day + window)
            text = fuzzy_text(line)
            best: tuple[float, int, int, int] | None = None
            examined = visited = 0
            for j in _nearest(days, lo, hi, day):
                pos = positions[j]
                visited += 1
                if taken[pos]:
                    continue
                if examined == cap:
                    self.capped += 1
                    break
                examined += 1
                names = refs.get(pos)
                if names is None:
                    names = refs[pos] = [
                        k
                        for k in map(reference_key, items[pos].references())
                        if len(k) >= config.min_fuzzy_reference
                    ]
                score = max(
                    (fuzz.partial_ratio(k, text, score_cutoff=config.fuzzy_threshold) for k in names),
                    default=0.0,
                )
                if score and (best is None or (-score, abs(days[j] - day), items[pos].log_index) < best[:3]):
                    best = (-score, abs(days[j] - day), items[pos].log_index, pos)
            # Skipped candidates count too: they are work, and the budget bounds all of it.
            self.comparisons += visited
            if best is not None:
                self._assign(i, Category.SUGGESTED, Rule.TOLERANT, best[3])
                self.scores[i] = round(-best[0])
                self.related.pop(i, None)

    # -- results -----------------------------------------------------------------------------

    def missing_in_bank(self) -> list[int]:
        """Return the positions of items no line accounts for, in log order."""
        items = self.items
        return sorted(
            (p for p, code in enumerate(self.item_cat) if code == UNSET),
            key=lambda p: (items[p].log_index, p),
        )

    def totals(self) -> tuple[dict[Category, CategoryTotal], int]:
        """Return the count and money per category, and the sum of all differences."""
        acc = {c: [0, 0, 0] for c in Category}
        items = self.items
        for i, line in enumerate(self.lines):
            cat = _CATEGORIES[self.line_cat[i]]
            assert cat is not None
            group = self.groups.get(i)
            if group is not None:
                ledger = sum(items[p].amount for p in group)
            elif cat in _PAIRED:
                ledger = items[self.line_item[i]].amount
            else:
                ledger = 0
            row = acc[cat]
            row[0] += 1
            row[1] += line.amount
            row[2] += ledger
        missing = acc[Category.MISSING_IN_BANK]
        for p, code in enumerate(self.item_cat):
            if code == UNSET:
                missing[0] += 1
                missing[2] += items[p].amount
        totals = {c: CategoryTotal(n, bank, ledger, bank - ledger) for c, (n, bank, ledger) in acc.items()}
        return totals, sum(t.difference for t in totals.values())

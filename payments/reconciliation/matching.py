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

Lines and items are read by column (:class:`~.statements.StatementLines`, :class:`~.items.LedgerItems`)
and outcomes kept in flat arrays (:mod:`.result`), so a million lines against a million items
stays well within memory.
"""

from __future__ import annotations

import bisect
from array import array
from collections.abc import Iterable, Iterator
from typing import TypeAlias

from rapidfuzz import fuzz

from payments.reconciliation.domain import (
    BalanceCheck,
    Category,
    CategoryTotal,
    LedgerItem,
    MatchConfig,
    MatchStats,
    Rule,
)
from payments.reconciliation.items import LedgerItems
from payments.reconciliation.references import compile_patterns, fuzzy_text, line_keys, reference_key
from payments.reconciliation.result import (
    CATEGORIES,
    CATEGORY_CODE,
    PAIRED,
    RULE_CODE,
    Columns,
    Outcome,
    Reconciliation,
)
from payments.reconciliation.statements.model import Statement

__all__ = ["Outcome", "Reconciliation", "reconcile"]

Index: TypeAlias = dict[str, "int | list[int]"]

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


def reconcile(
    statement: Statement,
    items: LedgerItems | Iterable[LedgerItem],
    *,
    ledger_balance: int,
    ledger_opening: int | None = None,
    history: Iterable[LedgerItem] = (),
    config: MatchConfig | None = None,
) -> Reconciliation:
    """Match ``statement`` against ``items`` and check the closing balances.

    ``items`` are the ledger transactions on the reconciled account in the statement's
    period (a :class:`LedgerItems` for large loads); ``ledger_balance`` is that account's
    ledger balance at the end of the period (and ``ledger_opening`` at its start, when
    known). ``history`` holds earlier items a line may refer back to, such as the payout a
    return credits back; they are not reconciled themselves.
    """
    store = items if isinstance(items, LedgerItems) else LedgerItems(items)
    engine = _Engine(statement, store, history, config or MatchConfig())
    engine.run()
    totals, explained = engine.totals()
    balance = BalanceCheck(
        statement_opening=statement.opening_balance,
        statement_closing=statement.closing_balance,
        ledger_opening=ledger_opening,
        ledger_closing=ledger_balance,
        explained=explained,
    )
    stats = MatchStats(
        by_rule=dict(engine.by_rule),
        fuzzy_comparisons=engine.comparisons,
        not_examined=engine.not_examined,
        capped=engine.capped,
    )
    columns = Columns(
        engine.line_cat,
        engine.line_rule,
        engine.line_item,
        engine.groups,
        engine.related,
        engine.scores,
        engine.missing_in_bank(),
        balance,
        totals,
        stats,
    )
    return Reconciliation(statement, store, engine.config, columns)


_TXN_FIELDS = ("bank_txn_id", "connector_txn_id")
_REF_FIELDS = ("payout_ref", "funding_ref", "intent", "receipt")


class _Engine:
    def __init__(
        self,
        statement: Statement,
        items: LedgerItems,
        history: Iterable[LedgerItem],
        config: MatchConfig,
    ) -> None:
        self.statement = statement
        lines = statement.lines
        self.line_ids, self.line_refs, self.line_texts = lines.line_ids, lines.references, lines.descriptions
        self.line_amounts, self.line_days = lines.amounts, lines.value_days
        self.items = items
        self.amounts, self.days, self.logs = items.amounts, items.days, items.log_indexes
        self.config = config
        self.patterns = compile_patterns(config.reference_patterns)
        n, m = len(lines), len(items)
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
        self.has_id = bytearray(m)
        self.by_txn = self._index(_TXN_FIELDS, mark=self.has_id)
        self.by_ref = self._index(_REF_FIELDS)
        self._retry_index: Index | None = None
        self._batch_index: Index | None = None
        self.history: list[LedgerItem] = [h for h in history if h.payout_ref and h.amount < 0]
        self.by_history: Index = {}
        for pos, item in enumerate(self.history):
            _put(self.by_history, item.payout_ref, pos)

    def _index(self, fields: tuple[str, ...], mark: bytearray | None = None) -> Index:
        index: Index = {}
        get = index.get
        for name in fields:
            if not self.items.has_reference(name):
                continue
            for pos, value in enumerate(self.items.column(name)):
                if not value:
                    continue
                # Inlined _put: this loop runs once per item and reference.
                key = (
                    value if value.isascii() and value.isalnum() and value.isupper() else reference_key(value)
                )
                if not key:
                    continue
                if mark is not None:
                    mark[pos] = 1
                found = get(key)
                if found is None:
                    index[key] = pos
                elif isinstance(found, int):
                    if found != pos:
                        index[key] = [found, pos]
                elif found[-1] != pos:
                    found.append(pos)
        return index

    @property
    def by_retry(self) -> Index:
        # Secondary indexes are built only once a line needs them.
        if self._retry_index is None:
            self._retry_index = self._index(("retry_of",))
        return self._retry_index

    @property
    def by_batch(self) -> Index:
        if self._batch_index is None:
            self._batch_index = self._index(("batch",))
        return self._batch_index

    # -- bookkeeping -------------------------------------------------------------------------

    def _keys(self, i: int) -> dict[str, int]:
        return line_keys(
            self.line_ids[i],
            self.line_refs[i],
            self.line_texts[i],
            min_token=self.config.min_token,
            patterns=self.patterns,
        )

    def _assign(self, i: int, category: Category, rule: Rule | None, pos: int = -1) -> None:
        self.line_cat[i] = CATEGORY_CODE[category]
        if rule is not None:
            self.line_rule[i] = RULE_CODE[rule]
            if category in (Category.MATCHED, Category.SUGGESTED):
                self.by_rule[rule] += 1
        if pos >= 0:
            self.line_item[i] = pos
            if category in PAIRED:
                self.item_cat[pos] = CATEGORY_CODE[category]

    def _order(self, i: int, hits: Iterable[tuple[int, int]]) -> list[int]:
        """Return the hit items, best first: rank, then date distance, then log index."""
        days, logs = self.days, self.logs
        day = self.line_days[i]
        best: dict[int, int] = {}
        for rank, pos in hits:
            if rank < best.get(pos, 99):
                best[pos] = rank
        return sorted(best, key=lambda p: (best[p], abs(days[p] - day), logs[p], p))

    def _first_equal(self, i: int, hits: Iterable[tuple[int, int]]) -> int:
        amounts, taken, amount = self.amounts, self.item_cat, self.line_amounts[i]
        for pos in self._order(i, hits):
            if not taken[pos] and amounts[pos] == amount:
                return pos
        return -1

    def _same_sign(self, i: int, pos: int) -> bool:
        return (self.amounts[pos] > 0) == (self.line_amounts[i] > 0)

    # -- passes ------------------------------------------------------------------------------

    def run(self) -> None:
        self._by_transaction_id()
        self._by_reference()
        self._by_batch()
        self._leftover_evidence()
        self._tolerant()
        missing = CATEGORY_CODE[Category.MISSING_IN_LEDGER]
        for i, code in enumerate(self.line_cat):
            if code == UNSET:
                self.line_cat[i] = missing

    def _by_transaction_id(self) -> None:
        by_txn, amounts, taken = self.by_txn, self.amounts, self.item_cat
        line_amounts, line_cat, line_rule, line_item = (
            self.line_amounts,
            self.line_cat,
            self.line_rule,
            self.line_item,
        )
        matched, by_id = CATEGORY_CODE[Category.MATCHED], RULE_CODE[Rule.BANK_TXN_ID]
        quick = 0
        for i, line_id in enumerate(self.line_ids):
            key = (
                line_id
                if line_id.isascii() and line_id.isalnum() and line_id.isupper()
                else reference_key(line_id)
            )
            found = by_txn.get(key)
            # The common case, one item under the line's own id, needs no key extraction
            # (what _assign does for a match by bank transaction id, inlined).
            if isinstance(found, int) and not taken[found] and amounts[found] == line_amounts[i]:
                line_cat[i] = matched
                line_rule[i] = by_id
                line_item[i] = found
                taken[found] = matched
                quick += 1
                continue
            keys = self._keys(i)
            txn = _hits(by_txn, keys)
            pos = self._first_equal(i, txn)
            if pos >= 0:
                self._assign(i, Category.MATCHED, Rule.BANK_TXN_ID, pos)
                continue
            ref = _hits(self.by_ref, keys)
            pos = self._first_equal(i, ref)
            if pos >= 0 and not self.has_id[pos]:
                # No line can claim an item without a bank transaction id by stronger
                # evidence, so matching it by reference now gives what a later pass would.
                self._assign(i, Category.MATCHED, Rule.REFERENCE, pos)
                continue
            flags = _TXN if txn else 0
            if ref:
                flags |= _REF
            if _hits(self.by_retry, keys):
                flags |= _RETRY
            if _hits(self.by_batch, keys):
                flags |= _BATCH
            if line_amounts[i] > 0 and _hits(self.by_history, keys):
                flags |= _HISTORY
            self.flags[i] = flags
        self.by_rule[Rule.BANK_TXN_ID] += quick

    def _pending(self, mask: int) -> Iterator[int]:
        cats = self.line_cat
        for i, flag in enumerate(self.flags):
            if flag & mask and cats[i] == UNSET:
                yield i

    def _by_reference(self) -> None:
        amounts, taken = self.amounts, self.item_cat
        for i in self._pending(_REF | _TXN):
            keys = self._keys(i)
            ref = _hits(self.by_ref, keys)
            pos = self._first_equal(i, ref)
            if pos >= 0:
                self._assign(i, Category.MATCHED, Rule.REFERENCE, pos)
                continue
            named = [
                p
                for p in self._order(i, ref + _hits(self.by_txn, keys))
                if not taken[p] and self._same_sign(i, p)
            ]
            if len(named) >= 2 and sum(amounts[p] for p in named) == self.line_amounts[i]:
                self._group(i, named)

    def _group(self, i: int, members: list[int]) -> None:
        ordered = tuple(sorted(members, key=lambda p: (self.logs[p], p)))
        self.groups[i] = ordered
        self._assign(i, Category.MATCHED, Rule.MANY_TO_ONE)
        for p in ordered:
            self.item_cat[p] = CATEGORY_CODE[Category.MATCHED]

    def _by_batch(self) -> None:
        amounts, taken = self.amounts, self.item_cat
        for i in self._pending(_BATCH):
            keys = self._keys(i)
            for key in sorted(keys, key=lambda k: (keys[k], k)):
                found = self.by_batch.get(key)
                if found is None:
                    continue
                batch = [found] if isinstance(found, int) else found
                members = [p for p in batch if not taken[p] and self._same_sign(i, p)]
                if len(members) >= 2 and sum(amounts[p] for p in members) == self.line_amounts[i]:
                    self._group(i, members)
                    break

    def _leftover_evidence(self) -> None:
        items, amounts, taken = self.items, self.amounts, self.item_cat
        matched = CATEGORY_CODE[Category.MATCHED]
        for i in self._pending(_TXN | _REF | _RETRY | _HISTORY):
            amount = self.line_amounts[i]
            keys = self._keys(i)
            by_id = _hits(self.by_txn, keys)
            named = by_id + _hits(self.by_ref, keys)
            ordered = self._order(i, named)
            same_sign = [p for p in ordered if not taken[p] and self._same_sign(i, p)]
            if same_sign:
                rule = Rule.BANK_TXN_ID if same_sign[0] in {p for _, p in by_id} else Rule.REFERENCE
                self._assign(i, Category.AMOUNT_MISMATCH, rule, same_sign[0])
                continue
            again = self._order(i, named + _hits(self.by_retry, keys))
            twice = [p for p in again if taken[p] == matched and amounts[p] == amount]
            if twice:
                self._assign(i, Category.DUPLICATE_IN_BANK, Rule.REFERENCE)
                self.related[i] = items[twice[0]]
                continue
            if amount > 0:
                payouts = [items[p] for p in ordered if amounts[p] < 0 and items.reference("payout_ref", p)]
                payouts += [self.history[p] for _, p in _hits(self.by_history, keys)]
                if payouts:
                    payouts.sort(key=lambda it: (it.amount != -amount, it.log_index))
                    self._assign(i, Category.RETURNED, Rule.REFERENCE)
                    self.related[i] = payouts[0]
                    continue
            if again:
                self.related[i] = items[again[0]]

    def _tolerant(self) -> None:
        config, items, taken = self.config, self.items, self.item_cat
        amounts, item_days, logs = self.amounts, self.days, self.logs
        window, cap = config.date_window_days, config.max_candidates
        buckets: dict[int, tuple[list[int], list[int]]] = {}
        for pos in sorted(
            (p for p in range(len(items)) if not taken[p]),
            key=lambda p: (item_days[p], logs[p], p),
        ):
            days, positions = buckets.setdefault(amounts[pos], ([], []))
            days.append(item_days[pos])
            positions.append(pos)
        if not buckets:
            return
        refs: dict[int, list[str]] = {}
        for i, code in enumerate(self.line_cat):
            if code != UNSET or self.line_amounts[i] not in buckets:
                continue
            if self.comparisons >= config.max_fuzzy_comparisons:
                self.not_examined += 1
                continue
            days, positions = buckets[self.line_amounts[i]]
            day = self.line_days[i]
            lo, hi = bisect.bisect_left(days, day - window), bisect.bisect_right(days, day + window)
            text = fuzzy_text(self.line_refs[i], self.line_texts[i])
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
                        for k in map(reference_key, items.references(pos))
                        if len(k) >= config.min_fuzzy_reference
                    ]
                score = max(
                    (fuzz.partial_ratio(k, text, score_cutoff=config.fuzzy_threshold) for k in names),
                    default=0.0,
                )
                if score and (best is None or (-score, abs(days[j] - day), logs[pos]) < best[:3]):
                    best = (-score, abs(days[j] - day), logs[pos], pos)
            # Skipped candidates count too: they are work, and the budget bounds all of it.
            self.comparisons += visited
            if best is not None:
                self._assign(i, Category.SUGGESTED, Rule.TOLERANT, best[3])
                self.scores[i] = round(-best[0])
                self.related.pop(i, None)

    # -- results -----------------------------------------------------------------------------

    def missing_in_bank(self) -> list[int]:
        """Return the positions of items no line accounts for, in log order."""
        logs = self.logs
        return sorted(
            (p for p, code in enumerate(self.item_cat) if code == UNSET), key=lambda p: (logs[p], p)
        )

    def totals(self) -> tuple[dict[Category, CategoryTotal], int]:
        """Return the count and money per category, and the sum of all differences."""
        acc = {c: [0, 0, 0] for c in Category}
        amounts, line_amounts, line_item = self.amounts, self.line_amounts, self.line_item
        paired = {CATEGORY_CODE[c] for c in PAIRED}
        rows = [acc[c] if c is not None else [0, 0, 0] for c in CATEGORIES]
        for i, code in enumerate(self.line_cat):
            group = self.groups.get(i)
            if group is not None:
                ledger = sum(amounts[p] for p in group)
            elif code in paired:
                ledger = amounts[line_item[i]]
            else:
                ledger = 0
            row = rows[code]
            row[0] += 1
            row[1] += line_amounts[i]
            row[2] += ledger
        missing = acc[Category.MISSING_IN_BANK]
        for p, code in enumerate(self.item_cat):
            if code == UNSET:
                missing[0] += 1
                missing[2] += amounts[p]
        totals = {c: CategoryTotal(n, bank, ledger, bank - ledger) for c, (n, bank, ledger) in acc.items()}
        return totals, sum(t.difference for t in totals.values())

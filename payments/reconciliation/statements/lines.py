"""Statement lines stored by column, so a million of them fit in about 250 MB.

:class:`StatementLines` reads like a tuple of :class:`~.model.StatementLine`, each built
when asked for, and cannot change once its statement is built. The matching engine reads
its columns directly instead of building an object per line.
"""

from __future__ import annotations

import datetime as dt
import re
from array import array
from collections.abc import Iterable, Sequence
from typing import overload

from payments.reconciliation.statements.line import StatementLine

_SOURCE = re.compile(r"(.*?)([0-9]+)(\]?)")
_LINE = ("line ", "")


def line_fields(line: StatementLine) -> tuple[str, dt.date, dt.date, int, str, str, str, bool]:
    """Return the fields of ``line`` in the order :meth:`StatementLines.add` takes them."""
    return (
        line.line_id,
        line.booking_date,
        line.value_date,
        line.amount,
        line.reference,
        line.description,
        line.source,
        line.reversal,
    )


class StatementLines(Sequence[StatementLine]):
    """The lines of a statement, stored by column: a million lines in about 250 MB.

    It reads like a tuple of :class:`StatementLine` (each built when asked for) and cannot
    change once the statement is built. The columns (``line_ids``, ``amounts``,
    ``value_days`` as date ordinals, ...) are there for the matching engine, which reads a
    million lines without building a million objects.
    """

    def __init__(self, lines: Iterable[StatementLine] = (), *, growing: bool = False) -> None:
        self.line_ids: list[str] = []
        self.references: list[str] = []
        self.descriptions: list[str] = []
        self.amounts = array("q")
        self.booking_days = array("l")
        self.value_days = array("l")
        self.reversals = bytearray()
        # A source is kept as (prefix, number, suffix): "line " 12 "", or ".../Ntry[" 3 "]".
        self._prefixes: dict[tuple[str, str], int] = {}
        self._affixes: list[tuple[str, str]] = []
        self._affix = array("H")
        self._numbers = array("q")
        self._frozen = False
        for line in lines:
            self.append(line)
        self._frozen = not growing

    def append(self, line: StatementLine) -> None:
        """Add ``line``; only the statement builder does, before the statement exists."""
        self.add(*line_fields(line))

    def add(
        self,
        line_id: str,
        booking_date: dt.date,
        value_date: dt.date,
        amount: int,
        reference: str,
        description: str,
        source: str,
        reversal: bool = False,
    ) -> None:
        """Add a line given by its fields, without building a :class:`StatementLine`."""
        if self._frozen:
            raise TypeError("statement lines cannot change")
        self.line_ids.append(line_id)
        self.references.append(reference)
        self.descriptions.append(description)
        self.amounts.append(amount)
        self.booking_days.append(booking_date.toordinal())
        self.value_days.append(value_date.toordinal())
        self.reversals.append(reversal)
        if source.startswith("line ") and source[5:].isdigit():
            affix, number = _LINE, int(source[5:])
        else:
            found = _SOURCE.fullmatch(source)
            affix = ("", source) if found is None else (found[1], found[3])
            number = -1 if found is None else int(found[2])
        key = self._prefixes.get(affix)
        if key is None:
            key = self._prefixes[affix] = len(self._affixes)
            self._affixes.append(affix)
        self._affix.append(key)
        self._numbers.append(number)

    def freeze(self) -> None:
        """Refuse any further change."""
        self._frozen = True

    def source(self, i: int) -> str:
        """Return where line ``i`` is in its file."""
        prefix, suffix = self._affixes[self._affix[i]]
        number = self._numbers[i]
        return suffix if number < 0 else f"{prefix}{number}{suffix}"

    def __len__(self) -> int:
        return len(self.line_ids)

    @overload
    def __getitem__(self, i: int) -> StatementLine: ...

    @overload
    def __getitem__(self, i: slice) -> list[StatementLine]: ...

    def __getitem__(self, i: int | slice) -> StatementLine | list[StatementLine]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError("statement line index out of range")
        return StatementLine(
            self.line_ids[i],
            dt.date.fromordinal(self.booking_days[i]),
            dt.date.fromordinal(self.value_days[i]),
            self.amounts[i],
            self.references[i],
            self.descriptions[i],
            self.source(i),
            bool(self.reversals[i]),
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<StatementLines: {len(self)} lines>"

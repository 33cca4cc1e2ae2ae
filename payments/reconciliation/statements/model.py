"""The statement model and the checks every imported statement passes.

A :class:`Statement` is one account's booked movements over a period, in whole dong, with
the opening and closing balances the bank states. Importers (CSV, camt.053, MT940) read a
file as a stream and hand each balance and line to a :class:`StatementBuilder`, which checks,
as the lines arrive and without a second pass over the file:

* one currency, VND (ISO 4217 exponent 0, so amounts are integers);
* no line id twice;
* booking dates never going backwards, and inside the period of their statement section;
* a running balance column, when the format has one, following line by line;
* each section's opening balance plus its lines equal to its closing balance, and each
  section opening where the previous one closed (MT940 pages, several camt.053 ``Stmt``).

Value dates are read but not held to the period: banks back- and forward-value entries.

Every problem is recorded with its location (see :mod:`payments.reconciliation.errors`) and
the statement is built only when there were none. The :attr:`Statement.fingerprint` is the
SHA-256 of a canonical form of what the statement says (account, currency, period, balances
and every line's id, dates, amount, reference, description and reversal flag), not of the
file's bytes or its format, so the same statement imported twice is recognised.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass

from chopay.crypto import mask
from payments.ledger.domain import CURRENCY
from payments.reconciliation.errors import (
    CurrencyNotVnd,
    DateOutOfOrder,
    DateOutsidePeriod,
    DuplicateLineId,
    FieldInvalid,
    Problems,
    StatementMalformed,
    StatementTooLarge,
    StatementUnbalanced,
)
from payments.reconciliation.statements.line import StatementLine
from payments.reconciliation.statements.lines import StatementLines, line_fields

MAX_LINES = 1_000_000
"""Lines one reconciliation takes: the size the engine is measured at (bench/reconcile_engine.py)."""
FINGERPRINT_VERSION = 1
HASH_BLOCK = 4096
"""Canonical lines hashed together, for the fingerprint."""
__all__ = ["MAX_LINES", "Statement", "StatementBuilder", "StatementLine", "StatementLines"]


@dataclass(frozen=True, slots=True)
class Statement:
    """A validated bank statement of one account."""

    format: str
    account: str | None
    """The bank's account identification as the file gives it; personal data, see :attr:`masked_account`."""
    currency: str
    period_from: dt.date
    period_to: dt.date
    opening_balance: int
    closing_balance: int
    lines: StatementLines
    fingerprint: str
    statement_id: str | None = None
    available_balance: int | None = None

    @property
    def masked_account(self) -> str | None:
        """Return the account identification with all but its last four characters hidden."""
        return None if self.account is None else mask(self.account)

    @property
    def total(self) -> int:
        """Return the sum of the line amounts."""
        return self.closing_balance - self.opening_balance


class StatementBuilder:
    """Checks balances and lines as an importer reads them, then builds the statement."""

    def __init__(
        self,
        format: str,
        *,
        problems: Problems | None = None,
        account: str | None = None,
        period: tuple[dt.date | None, dt.date | None] | None = None,
    ) -> None:
        self.format = format
        self.problems = problems if problems is not None else Problems()
        self.account = account
        self.period = period
        self.lines = StatementLines(growing=True)
        self.statement_id: str | None = None
        self.opening: int | None = None
        self.closing: int | None = None
        self.available: int | None = None
        self._ids: set[str] = set()
        self._last_booking: dt.date | None = None
        self._running: int | None = None
        self._section_start = 0
        self._section_problems = 0
        self._resync = False
        self._section_from: dt.date | None = None
        self._section_location = ""
        self._first_from: dt.date | None = None
        self._last_to: dt.date | None = None
        self._sections = 0
        self._hash = hashlib.sha256()
        self._pending: list[str] = []
        self._iso: dict[dt.date, str] = {}

    @property
    def running(self) -> int | None:
        """Return the balance after the last line of the open section, or None outside one."""
        return self._running

    @property
    def in_section(self) -> bool:
        """Tell whether a section was opened and not closed yet."""
        return self._running is not None

    def begin_section(
        self,
        *,
        opening: int,
        currency: str,
        location: str,
        account: str | None = None,
        period_from: dt.date | None = None,
        statement_id: str | None = None,
    ) -> None:
        """Open a section (a page, a daily statement) whose opening balance is ``opening``."""
        add = self.problems.add
        if currency != CURRENCY:
            add(CurrencyNotVnd(f"the statement is in {currency!r}, not {CURRENCY}", location=location))
        if account is not None:
            if self.account is None:
                self.account = account
            elif account != self.account:
                add(
                    StatementMalformed(
                        f"this section is for account {mask(account)}, "
                        f"the statement for {mask(self.account)}",
                        location=location,
                    )
                )
        if self.in_section:
            add(StatementMalformed("a new section starts before the previous one closed", location=location))
        if self.closing is not None and opening != self.closing:
            add(
                StatementUnbalanced(
                    f"the opening balance {opening:,} does not continue the previous closing balance "
                    f"{self.closing:,}",
                    location=location,
                )
            )
        if self.opening is None:
            self.opening = opening
            self.statement_id = statement_id
        self._running = opening
        self._section_start = len(self.lines)
        self._section_problems = len(self.problems.items)
        self._section_from = period_from if period_from is not None else self._given_from()
        self._section_location = location
        if self._first_from is None:
            self._first_from = self._section_from
        self._sections += 1

    def _given_from(self) -> dt.date | None:
        return self.period[0] if self.period else None

    def skip(self, balance: int | None) -> None:
        """Note a line that could not be read, so the next running balance is not blamed for it."""
        self._resync = True
        if balance is not None and self._running is not None:
            self._running = balance
            self._resync = False

    def add_line(self, line: StatementLine, *, balance: int | None = None) -> None:
        """Check ``line`` against those before it and keep it."""
        self.add(*line_fields(line), balance=balance)

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
        *,
        balance: int | None = None,
    ) -> None:
        """Check a line given by its fields against those before it and keep it."""
        add = self.problems.add
        if len(self.lines.line_ids) >= MAX_LINES:
            self.problems.fatal(
                StatementTooLarge(
                    f"a statement may hold at most {MAX_LINES:,} lines; split it by date",
                    location=source,
                )
            )
        if line_id in self._ids:
            add(DuplicateLineId(f"line id {line_id} appears twice", location=source))
        else:
            self._ids.add(line_id)
        last = self._last_booking
        if last is not None and booking_date < last:
            add(
                DateOutOfOrder(
                    f"booking date {booking_date} is before the previous line's {last}",
                    location=source,
                )
            )
        else:
            self._last_booking = booking_date
        if self._running is None:
            add(StatementMalformed("a line comes before any opening balance", location=source))
            self._running = 0
        self._running += amount
        if self._resync and balance is not None:
            self._running, self._resync = balance, False
        elif balance is not None and balance != self._running:
            add(
                StatementUnbalanced(
                    f"the running balance is {balance:,}, but the previous balance plus the amount "
                    f"{amount:,} gives {self._running:,}",
                    location=source,
                )
            )
            # Follow the bank's balance so one wrong line is reported once, not on every later line.
            self._running = balance
        self.lines.add(line_id, booking_date, value_date, amount, reference, description, source, reversal)
        # The canonical line (netstrings inlined) is hashed in blocks: the digest is the same.
        pending, iso = self._pending, self._iso
        booked = iso.get(booking_date)
        if booked is None:
            booked = iso[booking_date] = booking_date.isoformat()
        valued = iso.get(value_date)
        if valued is None:
            valued = iso[value_date] = value_date.isoformat()
        pending.append(
            f"{len(line_id)}:{line_id}|{booked}|{valued}|{amount}|"
            f"{len(reference)}:{reference}|{len(description)}:{description}|{int(reversal)}\n"
        )
        if len(pending) >= HASH_BLOCK:
            self._flush_hash()

    def _flush_hash(self) -> None:
        self._hash.update("".join(self._pending).encode())
        self._pending.clear()

    def end_section(
        self,
        *,
        closing: int,
        location: str,
        period_to: dt.date | None = None,
        available: int | None = None,
    ) -> None:
        """Close the open section: its lines must bring the opening balance to ``closing``."""
        if self._running is None:
            self.problems.add(
                StatementMalformed("a closing balance without an opening one", location=location)
            )
            return
        start = self._section_start
        moved = sum(self.lines.amounts[start:])
        if self._running != closing and not self._had_balance_problem():
            self.problems.add(
                StatementUnbalanced(
                    f"the opening balance {self._running - moved:,} plus the lines ({moved:,}) "
                    f"gives {self._running:,}, but the closing balance is {closing:,} "
                    f"(off by {closing - self._running:,})",
                    location=location,
                )
            )
        section_to = period_to if period_to is not None else (self.period[1] if self.period else None)
        self._check_period(start, self._section_from, section_to)
        self.closing = closing
        if available is not None:
            self.available = available
        self._last_to = section_to
        self._running = None

    def _had_balance_problem(self) -> bool:
        # A running balance that did not follow, or a line that could not be read, already
        # explains why the section does not close; saying so again would only add noise.
        return any(
            isinstance(p, StatementUnbalanced | FieldInvalid | StatementMalformed)
            for p in self.problems.items[self._section_problems :]
        )

    def _check_period(self, first: int, start: dt.date | None, end: dt.date | None) -> None:
        if start is not None and end is not None and end < start:
            self.problems.add(
                StatementMalformed(
                    f"the period ends ({end}) before it starts ({start})", location=self._section_location
                )
            )
            return
        low = start.toordinal() if start is not None else None
        high = end.toordinal() if end is not None else None
        days = self.lines.booking_days
        for i in range(first, len(days)):
            day = days[i]
            if (low is not None and day < low) or (high is not None and day > high):
                self.problems.add(
                    DateOutsidePeriod(
                        f"booking date {dt.date.fromordinal(day)} is outside the statement period "
                        f"{start or '...'} to {end or '...'}",
                        location=self.lines.source(i),
                    )
                )

    def _lines_digest(self) -> str:
        self._flush_hash()
        return self._hash.hexdigest()

    def finish(self) -> Statement:
        """Return the statement, or raise every problem found."""
        if self.in_section:
            self.problems.add(
                StatementMalformed(
                    "the statement ends without a closing balance", location=self._section_location
                )
            )
        if self.opening is None or self.closing is None:
            if not self.problems:
                self.problems.add(StatementMalformed("the file holds no statement"))
            self.problems.raise_all()
        self.problems.check()
        lines = self.lines
        lines.freeze()
        days = lines.booking_days
        period_from = self._first_from or (dt.date.fromordinal(days[0]) if days else None)
        period_to = self._last_to or (dt.date.fromordinal(days[-1]) if days else None)
        if period_from is None or period_to is None:
            self.problems.fatal(StatementMalformed("the statement has no lines and no period"))
        header = {
            "v": FINGERPRINT_VERSION,
            "account": self.account,
            "currency": CURRENCY,
            "from": period_from.isoformat(),
            "to": period_to.isoformat(),
            "opening": self.opening,
            "closing": self.closing,
            "lines": len(lines),
            "lines_sha256": self._lines_digest(),
        }
        canonical = json.dumps(header, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return Statement(
            format=self.format,
            account=self.account,
            currency=CURRENCY,
            period_from=period_from,
            period_to=period_to,
            opening_balance=self.opening,
            closing_balance=self.closing,
            lines=lines,
            fingerprint=hashlib.sha256(canonical.encode()).hexdigest(),
            statement_id=self.statement_id,
            available_balance=self.available,
        )

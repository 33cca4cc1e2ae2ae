"""Bank statements as CSV, read through a column mapping.

A :class:`CsvMapping` says which header column holds which field and how values are written.
Column names are matched ignoring case and surrounding spaces; columns that are not mapped
are ignored. The fields:

=================  ==========================================================================
``line_id``        the bank's unique id of the line (required)
``booking_date``   the booking date (required); ``value_date`` defaults to it
``amount``         one signed column: positive money in, negative out (``negate=True`` flips
                   it for exports that count money out as positive), **or**
``credit/debit``   two unsigned columns, money in and money out, one of them blank or 0, **or**
``amount`` +       an unsigned amount and a column whose value is one of ``credit_marks``
``direction``      (``C``, ``CR``, ``CRDT``, ``IN``, ``+``) or ``debit_marks`` (``D``, ...)
``balance``        the running balance after the line (optional; when present every line
                   is checked against it and the opening and closing balances come from it)
``currency``       per-line currency, must be VND (optional; blank means VND)
``reference``      one or more columns joined by a space into the line's reference
``description``    one or more columns joined by a space into the line's description
``account``        the account number column, which must be the same on every row (optional)
=================  ==========================================================================

``date_format`` is a ``strptime`` format (``%Y-%m-%d``, ``%d/%m/%Y``, ``%Y-%m-%d %H:%M:%S``;
only the date counts). Amounts are whole dong, written with ``decimal_separator`` (a fraction
must be zero, as in ``18067000.00``) and optionally grouped by ``thousands_separator``
(``1.500.000`` with ``thousands_separator="."`` and ``decimal_separator=","``). ``order``
says whether rows run oldest first, newest first, or ``auto`` (newest first when the first
row is dated after the last). ``delimiter`` is the field separator.

Without a ``balance`` column the caller gives ``opening_balance`` and ``closing_balance``.
Excel exports are tolerated: a UTF-8 byte-order mark, CRLF line ends, blank rows (anywhere,
also trailing), missing trailing empty cells and a ``sep=;`` first line. Files in another
encoding are refused with ``encoding_invalid``, naming the line and byte.

Presets:

* :data:`BANK_SIMULATOR`, the export of ``chopay fakebank``:
  ``line_id,booking_date,value_date,amount,currency,balance,reference,description`` with ISO
  dates, signed integer amounts and the running balance.
* :data:`SEPAY`, SePay's transaction records with the field names of its transaction API
  (``id``, ``bank_brand_name``, ``account_number``, ``transaction_date``, ``amount_out``,
  ``amount_in``, ``accumulated``, ``transaction_content``, ``reference_number``, ``code``,
  ``sub_account``, ``bank_account_id``; documented at docs.sepay.vn/api-giao-dich.html and
  developer.sepay.vn, "Transaction API", as of 2026-12): ``transaction_date`` is
  ``YYYY-MM-DD HH:MM:SS`` Vietnam time, ``amount_in``/``amount_out`` are unsigned with a
  ``.00`` fraction, ``accumulated`` is the balance after the transaction, and SePay lists
  newest first. The line id is SePay's own ``id`` (unique per record); the bank's
  ``reference_number`` and the payment ``code`` SePay found in the content make up the
  reference, so both are matched against the ledger.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO, Literal

from chopay.crypto import mask
from payments.ledger.domain import CURRENCY
from payments.reconciliation.errors import (
    ColumnMissing,
    CurrencyNotVnd,
    EncodingInvalid,
    FieldInvalid,
    Problems,
    StatementMalformed,
)
from payments.reconciliation.statements.model import Statement, StatementBuilder
from payments.reconciliation.statements.values import (
    MAX_BALANCE,
    MAX_DESCRIPTION,
    MAX_REFERENCE,
    check_line_id,
    clean_text,
    date_reader,
    parse_amount,
)

Order = Literal["oldest_first", "newest_first", "auto"]
_Fields = tuple[str, dt.date, dt.date, int, str, str, str]
_Parsed = tuple[_Fields | None, int | None, str]
"""A CSV row read: its line's fields (None when unreadable), its running balance and its raw date."""


@dataclass(frozen=True)
class CsvMapping:
    """Which CSV column holds which statement field, and how values are written."""

    line_id: str
    booking_date: str
    value_date: str | None = None
    amount: str | None = None
    credit: str | None = None
    debit: str | None = None
    direction: str | None = None
    negate: bool = False
    balance: str | None = None
    currency: str | None = None
    reference: tuple[str, ...] = ()
    description: tuple[str, ...] = ()
    account: str | None = None
    date_format: str = "%Y-%m-%d"
    decimal_separator: str = "."
    thousands_separator: str = ""
    delimiter: str = ","
    order: Order = "oldest_first"
    credit_marks: frozenset[str] = field(default=frozenset({"C", "CR", "CRDT", "IN", "+"}))
    debit_marks: frozenset[str] = field(default=frozenset({"D", "DR", "DBIT", "OUT", "-"}))
    name: str = "custom"

    def __post_init__(self) -> None:
        split = self.credit is not None or self.debit is not None
        if split and (self.credit is None or self.debit is None):
            raise ValueError("a split mapping needs both the credit and the debit column")
        if split == (self.amount is not None):
            raise ValueError("map either one amount column or the credit and debit columns")
        if self.direction is not None and self.amount is None:
            raise ValueError("a direction column qualifies the amount column")
        if self.decimal_separator == self.thousands_separator or len(self.decimal_separator) != 1:
            raise ValueError(
                "the decimal separator must be one character, other than the thousands separator"
            )
        if len(self.delimiter) != 1:
            raise ValueError("the delimiter must be one character")

    def columns(self) -> list[str]:
        """Return every column the mapping reads."""
        named = [
            self.line_id,
            self.booking_date,
            self.value_date,
            self.amount,
            self.credit,
            self.debit,
            self.direction,
            self.balance,
            self.currency,
            self.account,
        ]
        return [c for c in named if c is not None] + list(self.reference) + list(self.description)


BANK_SIMULATOR = CsvMapping(
    name="bank_simulator",
    line_id="line_id",
    booking_date="booking_date",
    value_date="value_date",
    amount="amount",
    currency="currency",
    balance="balance",
    reference=("reference",),
    description=("description",),
)
SEPAY = CsvMapping(
    name="sepay",
    line_id="id",
    booking_date="transaction_date",
    date_format="%Y-%m-%d %H:%M:%S",
    credit="amount_in",
    debit="amount_out",
    balance="accumulated",
    reference=("code", "reference_number"),
    description=("transaction_content",),
    account="account_number",
    order="auto",
)
PRESETS = {m.name: m for m in (BANK_SIMULATOR, SEPAY)}

_UTF8_BOM = b"\xef\xbb\xbf"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_ENCODING_HINT = 'save it as "CSV UTF-8" (in Excel: File > Save As > CSV UTF-8) or convert it to UTF-8'


class _Lines:
    """The file's lines decoded as UTF-8, counting physical lines for locations."""

    def __init__(self, stream: BinaryIO, problems: Problems) -> None:
        self.stream = stream
        self.problems = problems
        self.number = 0
        self.delimiter: str | None = None

    def __iter__(self) -> Iterator[str]:
        for raw in self.stream:
            self.number += 1
            if self.number == 1:
                if raw.startswith(_UTF16_BOMS):
                    self.problems.fatal(
                        EncodingInvalid(f"the file is UTF-16, not UTF-8; {_ENCODING_HINT}", location="line 1")
                    )
                raw = raw.removeprefix(_UTF8_BOM)
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                self.problems.fatal(
                    EncodingInvalid(
                        f"the file is not UTF-8 (byte 0x{raw[exc.start]:02X} cannot be decoded); "
                        f"{_ENCODING_HINT}",
                        location=f"line {self.number}, byte {exc.start + 1}",
                    )
                )
            if self.number == 1 and text.strip().lower().startswith("sep=") and len(text.strip()) == 5:
                # Excel writes "sep=;" to announce the delimiter; it is not the header.
                self.delimiter = text.strip()[4]
                continue
            yield text


def _index(header: Sequence[str], mapping: CsvMapping, problems: Problems) -> dict[str, int]:
    names = [h.strip().casefold() for h in header]
    wanted = mapping.columns()
    missing = [c for c in wanted if c.strip().casefold() not in names]
    if missing:
        problems.fatal(
            ColumnMissing(
                f"missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
                f"(the header has: {', '.join(h.strip() for h in header)})",
                location="line 1",
            )
        )
    for c in wanted:
        if names.count(c.strip().casefold()) > 1:
            problems.add(StatementMalformed(f"the header has column {c} twice", location="line 1"))
    problems.check()
    return {c: names.index(c.strip().casefold()) for c in wanted}


def _amount_reader(mapping: CsvMapping, col: dict[str, int]) -> Callable[[list[str]], tuple[int, str]]:
    """Return a function giving a row's signed amount and the column to blame if it fails."""
    dec, thou = mapping.decimal_separator, mapping.thousands_separator
    if mapping.credit is not None and mapping.debit is not None:
        ci, di, cname, dname = col[mapping.credit], col[mapping.debit], mapping.credit, mapping.debit

        def split(row: list[str]) -> tuple[int, str]:
            c_text, d_text = row[ci].strip(), row[di].strip()
            credit = parse_amount(c_text, decimal=dec, thousands=thou) if c_text else 0
            debit = parse_amount(d_text, decimal=dec, thousands=thou) if d_text else 0
            if credit < 0 or debit < 0:
                raise ValueError(f"{cname} and {dname} hold unsigned amounts")
            if credit and debit:
                raise ValueError(f"both {cname} and {dname} are set")
            return credit - debit, cname

        return split
    assert mapping.amount is not None
    ai, aname = col[mapping.amount], mapping.amount
    if mapping.direction is not None:
        xi, credit_marks, debit_marks = col[mapping.direction], mapping.credit_marks, mapping.debit_marks

        def marked(row: list[str]) -> tuple[int, str]:
            amount = parse_amount(row[ai], decimal=dec, thousands=thou)
            mark = row[xi].strip().upper()
            if amount < 0:
                raise ValueError("the amount is unsigned when a direction column gives its sign")
            if mark in credit_marks:
                return amount, aname
            if mark in debit_marks:
                return -amount, aname
            raise ValueError(f"direction {mark!r} is neither a credit nor a debit mark")

        return marked
    sign = -1 if mapping.negate else 1

    def signed(row: list[str]) -> tuple[int, str]:
        return sign * parse_amount(row[ai], decimal=dec, thousands=thou), aname

    return signed


def read_csv(
    stream: BinaryIO,
    mapping: CsvMapping = BANK_SIMULATOR,
    *,
    account: str | None = None,
    period: tuple[dt.date | None, dt.date | None] | None = None,
    opening_balance: int | None = None,
    closing_balance: int | None = None,
) -> Statement:
    """Read and validate a CSV statement from a binary stream."""
    problems = Problems()
    if mapping.balance is None and (opening_balance is None or closing_balance is None):
        problems.fatal(
            StatementMalformed(
                f"the {mapping.name} mapping has no balance column: give the opening and closing balances"
            )
        )
    lines = _Lines(stream, problems)
    source = iter(lines)
    first = next(source, None)
    delimiter = lines.delimiter or mapping.delimiter
    text_lines = source if first is None else _prepend(first, source)
    reader = csv.reader(text_lines, delimiter=delimiter, strict=True)
    rows = _records(reader, lines, problems, start=lines.number)
    header_row = next(rows, None)
    if header_row is None:
        problems.fatal(StatementMalformed("the file is empty", location="line 1"))
    col = _index(header_row[1], mapping, problems)
    builder = StatementBuilder(f"csv:{mapping.name}", problems=problems, account=account, period=period)
    reading = _RowReader(mapping, col, len(header_row[1]), problems)
    buffered: list[_Parsed] = []
    streaming = mapping.order == "oldest_first"
    for number, row in rows:
        parsed = reading.read(number, row)
        if streaming:
            _feed(builder, parsed, opening_balance)
        else:
            buffered.append(parsed)
    if not streaming:
        if _newest_first(mapping, buffered):
            buffered.reverse()
        for parsed in buffered:
            _feed(builder, parsed, opening_balance)
        buffered.clear()
    if reading.account is not None:
        builder.account = builder.account or reading.account
    if not builder.in_section:
        if opening_balance is None:
            problems.fatal(StatementMalformed("the file has no lines, and no balances were given"))
        builder.begin_section(opening=opening_balance, currency=CURRENCY, location="line 1")
    closing = closing_balance if closing_balance is not None else builder.running
    assert closing is not None
    builder.end_section(closing=closing, location=f"line {lines.number}")
    return builder.finish()


def _prepend(first: str, rest: Iterator[str]) -> Iterator[str]:
    yield first
    yield from rest


def _records(
    reader: Iterator[list[str]], lines: _Lines, problems: Problems, *, start: int
) -> Iterator[tuple[int, list[str]]]:
    """Yield (first physical line, fields) for every non-blank record, from line ``start`` on."""
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            problems.fatal(StatementMalformed(f"the CSV cannot be read: {exc}", location=f"line {start}"))
        if row and (row[0].strip() or any(cell.strip() for cell in row)):
            yield start, row
        start = lines.number + 1


def _feed(builder: StatementBuilder, parsed: _Parsed, opening: int | None) -> None:
    fields, balance, _ = parsed
    if fields is None:
        builder.skip(balance)
        return
    if not builder.in_section:
        start = opening
        if start is None:
            assert balance is not None
            start = balance - fields[3]
        builder.begin_section(opening=start, currency=CURRENCY, location=fields[6])
    builder.add(*fields, balance=balance)


def _newest_first(mapping: CsvMapping, rows: list[_Parsed]) -> bool:
    if mapping.order == "newest_first":
        return True
    rows = [r for r in rows if r[0] is not None]
    if len(rows) < 2:
        return False
    try:
        first = dt.datetime.strptime(rows[0][2].strip(), mapping.date_format)  # noqa: DTZ007 (compared, never stored)
        last = dt.datetime.strptime(rows[-1][2].strip(), mapping.date_format)  # noqa: DTZ007
    except ValueError:
        first_line, last_line = rows[0][0], rows[-1][0]
        assert first_line is not None
        assert last_line is not None
        return first_line[1] > last_line[1]
    return first > last


class _RowReader:
    """Turns CSV records into statement lines, recording a problem per bad field."""

    def __init__(self, mapping: CsvMapping, col: dict[str, int], width: int, problems: Problems) -> None:
        self.mapping = mapping
        self.problems = problems
        self.width = width
        self.i_id = col[mapping.line_id]
        self.i_booking = col[mapping.booking_date]
        self.i_value = col[mapping.value_date] if mapping.value_date else None
        self.i_balance = col[mapping.balance] if mapping.balance else None
        self.i_currency = col[mapping.currency] if mapping.currency else None
        self.i_account = col[mapping.account] if mapping.account else None
        self.refs = [(c, col[c]) for c in mapping.reference]
        self.descs = [(c, col[c]) for c in mapping.description]
        self.read_date = date_reader(mapping.date_format)
        self.read_amount = _amount_reader(mapping, col)
        self.account: str | None = None

    def _bad(self, number: int, column: str, message: str) -> None:
        self.problems.add(FieldInvalid(message, location=f"line {number}, column {column}"))

    def read(self, number: int, row: list[str]) -> _Parsed:
        """Return the line (None after recording why it cannot be read), its balance and raw date."""
        m = self.mapping
        if len(row) != self.width:
            if len(row) > self.width and not any(c.strip() for c in row[self.width :]):
                row = row[: self.width]
            elif len(row) < self.width:
                row = row + [""] * (self.width - len(row))
            else:
                self.problems.add(
                    StatementMalformed(
                        f"the row has {len(row)} fields; the header has {self.width}",
                        location=f"line {number}",
                    )
                )
                return None, None, ""
        errors = len(self.problems.items)
        line_id = booking = amount = None
        try:
            line_id = check_line_id(row[self.i_id])
        except ValueError as exc:
            self._bad(number, m.line_id, str(exc))
        try:
            booking = self.read_date(row[self.i_booking])
        except ValueError as exc:
            self._bad(number, m.booking_date, str(exc))
        value = booking
        if self.i_value is not None and row[self.i_value].strip():
            try:
                value = self.read_date(row[self.i_value])
            except ValueError as exc:
                self._bad(number, str(m.value_date), str(exc))
        column = m.amount or m.credit or ""
        try:
            amount, column = self.read_amount(row)
        except ValueError as exc:
            self._bad(number, column, str(exc))
        balance = None
        if self.i_balance is not None:
            try:
                balance = parse_amount(
                    row[self.i_balance],
                    decimal=m.decimal_separator,
                    thousands=m.thousands_separator,
                    limit=MAX_BALANCE,
                )
            except ValueError as exc:
                self._bad(number, str(m.balance), str(exc))
        reference = self._text(row, number, self.refs, MAX_REFERENCE, "reference")
        description = self._text(row, number, self.descs, MAX_DESCRIPTION, "description")
        unreadable = len(self.problems.items) > errors
        # The currency and account say nothing about whether the line itself can be read, so
        # the line still goes through the statement checks (duplicates, order, balances).
        if self.i_currency is not None:
            currency = row[self.i_currency].strip().upper()
            if currency and currency != CURRENCY:
                self.problems.add(
                    CurrencyNotVnd(
                        f"the currency is {currency!r}, not {CURRENCY}",
                        location=f"line {number}, column {m.currency}",
                    )
                )
        if self.i_account is not None:
            self._check_account(number, row[self.i_account].strip())
        if unreadable:
            return None, balance, row[self.i_booking]
        assert line_id is not None
        assert booking is not None
        assert value is not None
        assert amount is not None
        return (
            (line_id, booking, value, amount, reference, description, f"line {number}"),
            balance,
            row[self.i_booking],
        )

    def _check_account(self, number: int, value: str) -> None:
        if not value:
            return
        if self.account is None:
            self.account = value
        elif value != self.account:
            self.problems.add(
                StatementMalformed(
                    f"the account changes from {mask(self.account)} to {mask(value)}",
                    location=f"line {number}, column {self.mapping.account}",
                )
            )

    def _text(
        self, row: list[str], number: int, columns: list[tuple[str, int]], limit: int, what: str
    ) -> str:
        parts = []
        for name, i in columns:
            try:
                cleaned = clean_text(row[i], limit=limit, what=what)
            except ValueError as exc:
                self._bad(number, name, str(exc))
                continue
            if cleaned:
                parts.append(cleaned)
        joined = " ".join(parts)
        if len(joined) > limit:
            self._bad(number, columns[-1][0], f"{what} is longer than {limit} characters")
        return joined

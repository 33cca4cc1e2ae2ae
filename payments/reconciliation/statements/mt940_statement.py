"""SWIFT MT940 customer statements, read with the ``mt-940`` package.

The file is read line by line and cut into tags here, so that every problem names its line
and a large file is never held whole; each tag's content is then parsed by ``mt-940``
(``mt940.models.Transactions.parse``), which knows the field layouts. Tags used:

* ``:20:`` starts a message (a page or a day of the statement);
* ``:25:`` the account identification, ``:28C:`` the statement and sequence number;
* ``:60F:`` or ``:60M:`` (``:60:``) the opening balance of the message, whose date opens
  its period; ``:62F:`` or ``:62M:`` (``:62:``) the closing balance, whose date ends it;
  ``:64:`` the closing available balance;
* ``:61:`` a statement line: value date, optional entry (booking) date, ``C``/``D`` mark
  (``RC``/``RD`` for reversals, signed as the movement they make), amount, transaction type,
  customer reference (``NONREF`` for none) and, after ``//``, the bank reference, which is
  the line id; ``:86:`` after it is the line's description.

Messages of one file chain into one statement: each opens where the previous one closed
(intermediate ``:62M:``/``:60M:`` pages, or consecutive daily statements of one account).
SWIFT envelope lines (``{1:...}{2:...}{4:`` and ``-}``) are skipped. The text must be UTF-8
(SWIFT's character set is a subset of it).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from typing import Any, BinaryIO

import mt940
from mt940.tags import TAG_BY_ID, Tags

from payments.ledger.domain import CURRENCY
from payments.reconciliation.errors import (
    CurrencyNotVnd,
    EncodingInvalid,
    FieldInvalid,
    Problems,
    StatementMalformed,
)
from payments.reconciliation.statements.model import Statement, StatementBuilder, StatementLine
from payments.reconciliation.statements.values import (
    MAX_BALANCE,
    MAX_DESCRIPTION,
    MAX_REFERENCE,
    check_line_id,
    clean_text,
    decimal_to_dong,
)

# Strict signing: RC (reversal of a credit) takes money out, like the debit it is.
OPTIONS = mt940.Options(
    reversal_sign=True, case_insensitive_marks=True, merge_keeps_values=True, unbounded_details=True
)
# mt-940 moves an impossible day such as 30 February to the month's end; a statement that
# says so is refused here instead (the date does not parse).
PROCESSORS: Any = {"pre_statement": []}
_TAG = re.compile(r":(?P<tag>[0-9]{2}|NS)(?P<sub>[A-Z])?:")
_STATEMENT_LINE = Tags.STATEMENT.value.re
_OPENING = {"60F": "final_opening_balance", "60M": "intermediate_opening_balance", "60": "opening_balance"}
_CLOSING = {
    "62F": "final_closing_balance",
    "62M": "intermediate_closing_balance",
    "62": "closing_balance",
}


def _tags(stream: BinaryIO, problems: Problems) -> Iterator[tuple[str, str, int]]:
    """Yield (tag, content, line number) for every tag, content lines joined by newlines."""
    tag = ""
    content: list[str] = []
    start = 0
    for number, raw in enumerate(stream, start=1):
        if number == 1:
            raw = raw.removeprefix(b"\xef\xbb\xbf")
        try:
            line = raw.decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError as exc:
            problems.fatal(
                EncodingInvalid(
                    f"the file is not UTF-8 (byte 0x{raw[exc.start]:02X} cannot be decoded)",
                    location=f"line {number}",
                )
            )
        match = _TAG.match(line)
        known = match is not None and (
            f"{match['tag']}{match['sub'] or ''}" in TAG_BY_ID
            or (match["tag"].isdigit() and int(match["tag"]) in TAG_BY_ID)
            or match["tag"] in TAG_BY_ID
        )
        if match is not None and known:
            if tag:
                yield tag, "\n".join(content), start
            tag = f"{match['tag']}{match['sub'] or ''}"
            content = [line[match.end() :]]
            start = number
        elif line.startswith("{") or line.strip() in ("-}", "-", ""):
            continue
        elif tag:
            content.append(line)
        else:
            problems.add(StatementMalformed("text before the first tag", location=f"line {number}"))
    if tag:
        yield tag, "\n".join(content), start


class _Reader:
    def __init__(self, problems: Problems) -> None:
        self.problems = problems
        self.builder = StatementBuilder("mt940", problems=problems)
        self.page: mt940.models.Transactions | None = None
        self.reference: str | None = None
        self.account: str | None = None
        self.pending: tuple[str, int] | None = None
        self.details: list[str] = []
        self.open_location = ""

    def run(self, stream: BinaryIO) -> Statement:
        for tag, content, number in _tags(stream, self.problems):
            if tag != "86":
                self._flush()
            self._tag(tag, content, number)
        self._flush()
        return self.builder.finish()

    def _tag(self, tag: str, content: str, number: int) -> None:
        where = f"line {number}"
        if tag == "20":
            if self.builder.in_section:
                self.problems.add(
                    StatementMalformed(
                        "a new message starts before a closing balance (:62F:/:62M:)", location=where
                    )
                )
            self.page = mt940.models.Transactions(processors=PROCESSORS, options=OPTIONS)
            self.reference = content.strip() or None
        if self.page is None:
            self.problems.fatal(StatementMalformed(f"tag :{tag}: comes before :20:", location=where))
        if tag == "61":
            if not _STATEMENT_LINE.match(content.strip()):
                self.problems.add(
                    StatementMalformed(
                        "the :61: statement line does not follow the layout "
                        "YYMMDD[MMDD]{C|D|RC|RD}amount type reference[//bank reference]",
                        location=where,
                    )
                )
                self.pending = None
                return
            self.pending = (content, number)
            self.details = []
            return
        if tag == "86":
            if self.pending is not None:
                self.details.append(content)
            return
        data = self._parse(f":{tag}:{content}", where)
        if data is None:
            return
        if tag == "25":
            self.account = str(data.get("account_identification", "")).strip() or None
        elif tag in _OPENING:
            self._open(data.get(_OPENING[tag]), where)
        elif tag in _CLOSING:
            self._close(data.get(_CLOSING[tag]), where)
        elif tag == "64":
            # :64: follows the closing balance it qualifies.
            available = data.get("available_balance")
            if available is not None:
                self.builder.available = self._balance(available, where)

    def _parse(self, text: str, where: str) -> dict[str, Any] | None:
        assert self.page is not None
        try:
            self.page.parse(text)
        except (RuntimeError, ValueError, ArithmeticError, KeyError, TypeError) as exc:
            self.problems.add(StatementMalformed(f"the tag cannot be read: {_reason(exc)}", location=where))
            return None
        return self.page.data

    def _balance(self, balance: Any, where: str) -> int | None:
        try:
            return decimal_to_dong(balance.amount.amount, limit=MAX_BALANCE)
        except (AttributeError, ValueError) as exc:
            self.problems.add(FieldInvalid(f"the balance cannot be read: {exc}", location=where))
            return None

    def _open(self, balance: Any, where: str) -> None:
        amount = self._balance(balance, where)
        if amount is None:
            return
        self.builder.begin_section(
            opening=amount,
            currency=str(balance.amount.currency),
            location=where,
            account=self.account,
            period_from=_plain_date(balance.date),
            statement_id=self.reference,
        )

    def _close(self, balance: Any, where: str) -> None:
        amount = self._balance(balance, where)
        if amount is None:
            return
        currency = str(balance.amount.currency)
        if currency != CURRENCY:
            self.problems.add(
                CurrencyNotVnd(f"the closing balance is in {currency!r}, not {CURRENCY}", location=where)
            )
        self.builder.end_section(closing=amount, location=where, period_to=_plain_date(balance.date))

    def _flush(self) -> None:
        """Turn the pending :61: and its :86: into a statement line."""
        if self.pending is None:
            return
        content, number = self.pending
        self.pending = None
        where = f"line {number}"
        assert self.page is not None
        text = f":61:{content}" + "".join(f"\n:86:{d}" for d in self.details)
        try:
            self.page.parse(text)
            data = self.page.transactions.pop().data
        except (RuntimeError, ValueError, ArithmeticError, KeyError, TypeError, IndexError) as exc:
            self.problems.add(
                StatementMalformed(f"the statement line cannot be read: {_reason(exc)}", location=where)
            )
            return
        errors = len(self.problems.items)
        amount = None
        try:
            amount = decimal_to_dong(data["amount"].amount)
        except ValueError as exc:
            self.problems.add(FieldInvalid(str(exc), location=where))
        line_id = None
        try:
            line_id = check_line_id(str(data.get("bank_reference") or ""))
        except ValueError as exc:
            self.problems.add(FieldInvalid(f"{exc} (the bank reference after //)", location=where))
        reference = str(data.get("customer_reference") or "").strip()
        if reference.upper() == "NONREF":
            reference = ""
        described = [str(data.get("transaction_details") or ""), str(data.get("extra_details") or "")]
        try:
            reference = clean_text(reference, limit=MAX_REFERENCE, what="the reference")
            description = clean_text(" ".join(described), limit=MAX_DESCRIPTION, what="the description")
        except ValueError as exc:
            self.problems.add(FieldInvalid(str(exc), location=where))
            return
        if len(self.problems.items) > errors:
            return
        assert amount is not None
        assert line_id is not None
        value_date = data["date"]
        booking = data.get("entry_date") or value_date
        reversal = str(data.get("status", "")).upper().startswith("R")
        line = StatementLine(
            line_id,
            _plain_date(booking),
            _plain_date(value_date),
            amount,
            reference,
            description,
            where,
            reversal,
        )
        self.builder.add_line(line)


def _plain_date(value: Any) -> dt.date:
    # mt-940 returns its own date subclass; the statement holds plain dates.
    return dt.date(value.year, value.month, value.day)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, RuntimeError) and exc.args:
        return str(exc.args[0]).split(" from ")[0]
    return str(exc) or type(exc).__name__


def read_mt940(stream: BinaryIO) -> Statement:
    """Read and validate an MT940 statement from a binary stream."""
    return _Reader(Problems()).run(stream)

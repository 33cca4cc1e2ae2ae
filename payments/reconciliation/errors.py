"""Errors of reconciliation.

A statement file is checked completely before anything is stored, and every problem found
is reported, not only the first (up to :data:`MAX_PROBLEMS`). Each problem is a
:class:`StatementError` naming where it is: ``line 12, column amount`` in a CSV file, an
element path such as ``/Document/BkToCstmrStmt/Stmt[1]/Ntry[3]/Amt`` in camt.053, or
``line 17`` in MT940. The importer raises the first problem with all of them attached as
``problems``, so the API answers one 422 problem document whose ``code`` is the first
problem's and whose ``errors`` list holds every one.

Exception tree::

    ReconciliationError (chopay.errors.ChopayError)
    └── StatementError           422  statement_invalid (base; never raised itself)
        ├── StatementMalformed   422  statement_malformed: not well-formed, a required element,
        │                             tag or field missing, or a structure that cannot be read
        ├── EncodingInvalid      422  encoding_invalid: the bytes are not UTF-8
        ├── XmlForbidden         422  xml_forbidden: a DTD, entity declaration or external reference
        ├── NamespaceUnsupported 422  namespace_unsupported: not camt.053.001.02 or .001.08
        ├── ColumnMissing        422  column_missing: the CSV header lacks a mapped column
        ├── FieldInvalid         422  field_invalid: a value that does not parse or breaks a limit
        ├── StatementUnbalanced  422  statement_unbalanced: opening + lines != closing, a running
        │                             balance that does not follow, or pages that do not chain
        ├── CurrencyNotVnd       422  currency_not_vnd
        ├── DuplicateLineId      422  duplicate_line_id
        ├── DateOutOfOrder       422  date_out_of_order: a booking date before the previous one
        ├── DateOutsidePeriod    422  date_outside_period
        └── StatementTooLarge    422  statement_too_large: more lines than one reconciliation takes

Messages never quote a description, a name or an account number (they may hold personal
data); they quote amounts, dates, ids and column names.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NoReturn

from chopay.errors import ChopayError, Unprocessable

MAX_PROBLEMS = 100
"""Problems collected from one file before the import stops and reports them."""


class ReconciliationError(ChopayError):
    """Base class of reconciliation errors."""


class StatementError(ReconciliationError, Unprocessable):
    """One thing wrong with a statement file, at a location in it."""

    code = "statement_invalid"
    title = "Statement rejected"

    def __init__(self, message: str, *, location: str | None = None) -> None:
        super().__init__(f"{location}: {message}" if location else message)
        self.message = message
        self.location = location
        self.problems: tuple[StatementError, ...] = (self,)
        self.truncated = False

    def to_dict(self) -> dict[str, Any]:
        """Return this problem as one entry of the ``errors`` list."""
        return {"code": self.code, "location": self.location, "message": self.message}

    def to_problem(self) -> dict[str, Any]:
        """Return the problem document listing every problem found in the file."""
        body = super().to_problem()
        body["location"] = self.location
        body["errors"] = [p.to_dict() for p in self.problems]
        body["errors_truncated"] = self.truncated
        return body


class StatementMalformed(StatementError):
    code = "statement_malformed"


class EncodingInvalid(StatementError):
    code = "encoding_invalid"


class XmlForbidden(StatementError):
    code = "xml_forbidden"


class NamespaceUnsupported(StatementError):
    code = "namespace_unsupported"


class ColumnMissing(StatementError):
    code = "column_missing"


class FieldInvalid(StatementError):
    code = "field_invalid"


class StatementUnbalanced(StatementError):
    code = "statement_unbalanced"


class CurrencyNotVnd(StatementError):
    code = "currency_not_vnd"


class DuplicateLineId(StatementError):
    code = "duplicate_line_id"


class DateOutOfOrder(StatementError):
    code = "date_out_of_order"


class DateOutsidePeriod(StatementError):
    code = "date_outside_period"


class StatementTooLarge(StatementError):
    code = "statement_too_large"


class Problems:
    """Collects the problems of one file, up to a cap, and raises them together."""

    def __init__(self, limit: int = MAX_PROBLEMS) -> None:
        self.limit = limit
        self.items: list[StatementError] = []

    def __bool__(self) -> bool:
        return bool(self.items)

    def add(self, problem: StatementError) -> None:
        """Record ``problem``; once the cap is reached, stop the import with what was found."""
        self.items.append(problem)
        if len(self.items) >= self.limit:
            self.raise_all(truncated=True)

    def fatal(self, problem: StatementError) -> NoReturn:
        """Record a problem after which the file cannot be read further, and raise."""
        self.items.append(problem)
        self.raise_all()

    def raise_all(self, *, truncated: bool = False) -> NoReturn:
        """Raise the first problem carrying all of them."""
        raise collect(self.items, truncated=truncated)

    def check(self) -> None:
        """Raise if any problem was recorded."""
        if self.items:
            self.raise_all()


def collect(problems: Iterable[StatementError], *, truncated: bool = False) -> StatementError:
    """Return the first of ``problems`` with all of them attached, ready to raise."""
    found = tuple(problems)
    if not found:
        raise ValueError("no problems to report")
    first = found[0]
    first.problems = found
    first.truncated = truncated
    if len(found) > 1:
        more = f"{len(found) - 1}{'+' if truncated else ''}"
        first.detail = f"{first.detail} (and {more} more problems)"
    return first

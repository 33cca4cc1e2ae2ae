"""Import of merchants from a CSV or XLSX file, with a row-numbered report.

The file is read by ``disbursement.files`` (UTF-8 BOM, CRLF, ``;`` separators, trailing blank
rows and zip bombs handled there); its columns are the JSON field names of a merchant. Every
row is checked with the rules of ``POST /v1/merchants`` and created on its own savepoint, so
a bad row is reported and skipped without leaving half a record.

**Exactly once.** A merchant is identified by its bank account: the partial unique index
allows one active merchant per (bin, account_number). A row whose account already has an
active merchant holding the values of the row's cells (a QR name derived at the first import
and edited since does not count) is counted ``existing`` and names that merchant, so
uploading the same file twice (or two uploads racing) creates each merchant once; a row whose
account belongs to an active merchant with other fields is rejected as ``merchant_exists``,
naming it. Two rows of one file with the same account: the second is ``duplicate_in_file``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import IO, Any

from sqlalchemy.orm import Session

from chopay.crypto import DataKeys
from disbursement.domain import Problem, account_problem, phone_problem
from disbursement.files import Columns, FileProblem, Row, open_table
from merchants.errors import FileRejected, MerchantError, MerchantExists
from merchants.models import PHONE, Merchant
from merchants.services import registry

COLUMNS = Columns(
    required=tuple(f for f in registry.FIELDS if f in registry.REQUIRED),
    optional=tuple(f for f in registry.FIELDS if f not in registry.REQUIRED),
)
MAX_REPORTED = 10_000


@dataclass
class ImportReport:
    """What an import did: counts, each good row's merchant, and each bad row's problems."""

    rows: int = 0
    created: int = 0
    existing: int = 0
    rejected: int = 0
    merchants: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[dict[str, Any]] = field(default_factory=list)
    errors_truncated: bool = False

    def reject(self, row: int, problems: list[Problem]) -> None:
        """Count a bad row and report its problems."""
        self.rejected += 1
        for p in problems:
            if len(self.errors) >= MAX_REPORTED:
                self.errors_truncated = True
                return
            self.errors.append({"row": row, "column": p.column, "code": p.code, "message": p.message})

    def accept(self, row: int, merchant: Merchant, outcome: str) -> None:
        """Count a good row: its merchant was ``created`` or is ``existing``."""
        setattr(self, outcome, getattr(self, outcome) + 1)
        if len(self.merchants) < MAX_REPORTED:
            self.merchants.append({"row": row, "id": merchant.public_id, "outcome": outcome})


def _same(keys: DataKeys, merchant: Merchant, given: dict[str, Any]) -> bool:
    """Tell whether ``merchant`` already holds every value a row gives (derived ones aside)."""
    for name, value in given.items():
        if name == "phone":
            stored = keys.decrypt(merchant.phone, PHONE.context) if merchant.phone else None
            if stored != value:
                return False
        elif getattr(merchant, name) != value:
            return False
    return True


def _number_cells(row: Row) -> list[Problem]:
    """Report the account or phone that a spreadsheet stored as a number (leading zeros lost)."""
    found = []
    if "account_number" in row.numeric:
        found.append(account_problem(row.values["account_number"], from_number=True))
    if "phone" in row.numeric:
        found.append(phone_problem(row.values["phone"], from_number=True))
    return [p for p in found if p is not None]


def import_file(session: Session, keys: DataKeys, stream: IO[bytes], *, by: int | None) -> ImportReport:
    """Create merchants from a file; return the row-numbered report."""
    report = ImportReport()
    seen: dict[tuple[str, str], int] = {}
    try:
        table = open_table(stream, COLUMNS)
        report.warnings = [{"code": w.code, "message": w.message} for w in table.warnings]
        for row in table:
            report.rows += 1
            values = {k: v for k, v in row.values.items() if k in registry.FIELDS}
            clean, problems = registry.check_fields(values)
            problems = [
                *row.problems,
                *_number_cells(row),
                *(p for p in problems if p.column not in row.numeric),
            ]
            if problems:
                report.reject(row.number, problems)
                continue
            account = (clean["bin"], clean["account_number"])
            if account in seen:
                report.reject(
                    row.number,
                    [
                        Problem(
                            "duplicate_in_file",
                            f"Row {seen[account]} has the same bank account.",
                            "account_number",
                        )
                    ],
                )
                continue
            seen[account] = row.number
            _import_row(session, keys, row.number, values, clean, report, by)
    except FileProblem as exc:
        raise FileRejected(exc.message, code=exc.code, row=exc.row, column=exc.column) from None
    return report


def _import_row(
    session: Session,
    keys: DataKeys,
    number: int,
    values: dict[str, Any],
    clean: dict[str, Any],
    report: ImportReport,
    by: int | None,
) -> None:
    try:
        with session.begin_nested():
            merchant = registry.create(session, keys, values, by=by)
    except MerchantExists as exc:
        found = registry.find_active_by_account(session, clean["bin"], clean["account_number"])
        given = {k: v for k, v in clean.items() if str(values.get(k) or "").strip()}
        if found is not None and _same(keys, found, given):
            report.accept(number, found, "existing")
        else:
            report.reject(number, [Problem(exc.code, exc.detail, "account_number")])
        return
    except MerchantError as exc:
        problems = [Problem(p["code"], p["message"], p["field"]) for p in exc.extra.get("problems", [])]
        report.reject(number, problems or [Problem(exc.code, exc.detail)])
        return
    report.accept(number, merchant, "created")

"""Import of beneficiaries from a CSV or XLSX file, with a row-numbered report.

Each row creates a record or updates the one with the same national id (found through the
blind index), and when it names a ``program`` it enrols the person too (the enrolment with the
same ``enrolled_from`` is updated rather than duplicated). A row that changes nothing is
counted ``unchanged``, so importing the same file twice changes nothing the second time. A bad
row is reported and skipped, on its own savepoint, so it never leaves half a record; a problem
with the file itself (encoding, header) rejects the import before anything is written.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import IO, Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from chopay.crypto import DataKeys
from disbursement import domain
from disbursement.domain import Problem
from disbursement.errors import DisbursementError, FileRejected
from disbursement.files import Columns, FileProblem, Row, open_table
from disbursement.models import Beneficiary, Enrolment, Program
from disbursement.services import programs, registry

COLUMNS = Columns(
    required=("national_id", "full_name", "date_of_birth", "gender", "ward", "province"),
    optional=(
        "phone",
        "bin",
        "account_number",
        "status",
        "program",
        "monthly_amount",
        "enrolled_from",
        "enrolled_to",
    ),
)
CHUNK = 500
MAX_REPORTED = 10_000
_GENDERS = {"male": "male", "m": "male", "nam": "male", "female": "female", "f": "female", "nu": "female"}
_DMY = re.compile(r"([0-9]{1,2})/([0-9]{1,2})/([0-9]{4})")
_ISO = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


@dataclass
class ImportReport:
    """What an import did, row by row where it matters."""

    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    enrolled: int = 0
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


def parse_date(text: str) -> dt.date | Problem:
    """Read a date written ``YYYY-MM-DD`` or, as Vietnamese forms do, ``DD/MM/YYYY``."""
    try:
        if (found := _DMY.fullmatch(text)) is not None:
            return dt.date(int(found.group(3)), int(found.group(2)), int(found.group(1)))
        if _ISO.fullmatch(text):
            return dt.date.fromisoformat(text)
    except ValueError:
        pass  # a day or month out of range: the same answer as any other unreadable date
    return Problem(
        "date_of_birth_invalid", "date_of_birth is a date written YYYY-MM-DD or DD/MM/YYYY.", "date_of_birth"
    )


def typed(row: Row) -> tuple[dict[str, Any], list[Problem]]:
    """Turn a row's text cells into the typed values ``registry.check`` takes."""
    values: dict[str, Any] = dict(row.values)
    problems = list(row.problems)
    for name, text in row.values.items():
        if (found := domain.text_problem(name, text, domain.MAX_CELL)) is not None:
            problems.append(found)
            values[name] = ""
    born = parse_date(values["date_of_birth"]) if values["date_of_birth"] else None
    if isinstance(born, Problem):
        problems.append(born)
        born = None
    values["date_of_birth"] = born
    gender = values["gender"]
    values["gender"] = _GENDERS.get(domain.name_key(gender), gender.lower() or None)
    values["status"] = (values.get("status") or "").lower() or None
    return values, problems


@dataclass(frozen=True)
class EnrolmentRow:
    program: Program
    monthly_amount: int | None
    enrolled_from: str
    enrolled_to: str | None


def enrolment_of(
    session: Session, row: Row, cache: dict[str, Program | None]
) -> EnrolmentRow | None | list[Problem]:
    """Return the enrolment a row asks for, None if it asks for none, or its problems."""
    code = row.values.get("program", "")
    if not code:
        stray = [c for c in ("monthly_amount", "enrolled_from", "enrolled_to") if row.values.get(c)]
        return (
            [Problem("program_required", f"{stray[0]} is given without a program.", "program")]
            if stray
            else None
        )
    if code not in cache:
        cache[code] = session.scalar(sa.select(Program).where(Program.code == code))
    program = cache[code]
    problems: list[Problem] = []
    if program is None:
        problems.append(Problem("program_unknown", f"No program with code {code[:30]!r}.", "program"))
    amount: int | None = None
    if text := row.values.get("monthly_amount", ""):
        parsed = domain.parse_amount(text)
        if isinstance(parsed, Problem):
            problems.append(Problem(parsed.code, parsed.message, "monthly_amount"))
        else:
            amount = parsed
    periods: dict[str, str | None] = {}
    for name in ("enrolled_from", "enrolled_to"):
        text = row.values.get(name, "")
        periods[name] = None
        if not text:
            if name == "enrolled_from":
                problems.append(Problem("field_required", "enrolled_from is required with a program.", name))
            continue
        try:
            periods[name] = domain.parse_period(text)
        except ValueError as exc:
            problems.append(Problem("period_invalid", str(exc), name))
    if problems or program is None or periods["enrolled_from"] is None:
        return problems
    return EnrolmentRow(program, amount, periods["enrolled_from"], periods["enrolled_to"])


def _apply_enrolment(
    session: Session, person: Beneficiary, wanted: EnrolmentRow, created_by: int | None
) -> bool:
    """Create or update the person's enrolment starting at ``wanted.enrolled_from``; tell if it changed."""
    program = wanted.program
    amount = program.monthly_amount if wanted.monthly_amount is None else wanted.monthly_amount
    existing = session.scalar(
        sa.select(Enrolment).where(
            Enrolment.program_id == program.id,
            Enrolment.beneficiary_id == person.id,
            Enrolment.enrolled_from == wanted.enrolled_from,
        )
    )
    if existing is None:
        programs.enrol(
            session,
            program,
            person.id,
            enrolled_from=wanted.enrolled_from,
            enrolled_to=wanted.enrolled_to,
            monthly_amount=amount,
            created_by=created_by,
        )
        return True
    if (existing.enrolled_to, existing.monthly_amount) == (wanted.enrolled_to, amount):
        return False
    problem = domain.amount_problem(amount, program.cap)
    if problem:
        raise programs.invalid([Problem(problem.code, problem.message, "monthly_amount")])
    existing.enrolled_to = wanted.enrolled_to
    existing.monthly_amount = amount
    session.flush()
    return True


def _chunks(rows: Iterator[Row]) -> Iterator[list[Row]]:
    while chunk := list(islice(rows, CHUNK)):
        yield chunk


def import_file(
    session: Session, keys: DataKeys, stream: IO[bytes], *, created_by: int | None
) -> ImportReport:
    """Create, update and enrol beneficiaries from a file; return the row-numbered report."""
    report = ImportReport()
    try:
        table = open_table(stream, COLUMNS)
        report.warnings = [{"code": w.code, "message": w.message} for w in table.warnings]
        seen: dict[str, int] = {}
        program_cache: dict[str, Program | None] = {}
        for chunk in _chunks(iter(table)):
            _import_chunk(session, keys, chunk, report, seen, program_cache, created_by)
    except FileProblem as exc:
        raise FileRejected(exc.message, code=exc.code, row=exc.row, column=exc.column) from None
    return report


def _import_chunk(
    session: Session,
    keys: DataKeys,
    chunk: list[Row],
    report: ImportReport,
    seen: dict[str, int],
    program_cache: dict[str, Program | None],
    created_by: int | None,
) -> None:
    checked = []
    for row in chunk:
        report.rows += 1
        values, problems = typed(row)
        clean, found = registry.check(values, row.numeric)
        problems += found
        enrolment = enrolment_of(session, row, program_cache)
        if isinstance(enrolment, list):
            problems += enrolment
            enrolment = None
        checked.append((row, clean, problems, enrolment))
    indexes = [registry.national_id_index(keys, c["national_id"]) for _, c, p, _ in checked if not p]
    existing = {
        b.national_id_index: b
        for b in session.scalars(sa.select(Beneficiary).where(Beneficiary.national_id_index.in_(indexes)))
    }
    for row, clean, problems, enrolment in checked:
        if problems:
            report.reject(row.number, problems)
            continue
        index = registry.national_id_index(keys, clean["national_id"])
        if index in seen:
            report.reject(
                row.number,
                [
                    Problem(
                        "duplicate_in_file", f"The same national id is on row {seen[index]}.", "national_id"
                    )
                ],
            )
            continue
        seen[index] = row.number
        try:
            with session.begin_nested():
                person = existing.get(index)
                if person is None:
                    person = registry.insert(session, keys, clean, created_by=created_by)
                    outcome = "created"
                else:
                    changed = registry.update(
                        session, keys, person, clean, changed_by=created_by, source="import"
                    )
                    outcome = "updated" if changed.fields else "unchanged"
                enrolled = enrolment is not None and _apply_enrolment(session, person, enrolment, created_by)
        except DisbursementError as exc:
            problems = [
                Problem(p["code"], p["message"], p["field"]) for p in exc.extra.get("problems", [])
            ] or [Problem(exc.code, exc.detail, None)]
            report.reject(row.number, problems)
            continue
        if enrolled:
            report.enrolled += 1
            if outcome == "unchanged":
                outcome = "updated"
        setattr(report, outcome, getattr(report, outcome) + 1)

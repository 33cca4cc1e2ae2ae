"""Validation of a payout batch: control totals first, then every row, a chunk at a time.

``disbursement.jobs.validate_batch`` drives it. A run first takes the batch's lease (a run id
and an expiry, renewed with every chunk), so two runs of the job never interleave; a run whose
lease was taken over stops at its next chunk. Each chunk is one unit of work that writes its
items and errors and moves the batch's progress (``rows_checked``) together, so a run that dies
is resumed by the sweep from the first unchecked row and nothing is counted twice.

Per chunk the checks cost one query for the registry (by blind index, with the enrolment) and
one for entitlements; the rows are then written by COPY. Duplicates within the file are found
with a bitmap of the beneficiary ids seen so far (an eighth of a byte per registered person),
so a million-row file needs no set of a million ids in memory.

Error codes of rows (``batch_errors.code``), each with its column:
``national_id_missing | national_id_format | national_id_leading_zero_lost |
national_id_exponent | national_id_province_unknown`` (invalid CCCD), ``beneficiary_unknown``,
``full_name_missing``, ``name_mismatch``, ``beneficiary_suspended``, ``beneficiary_deceased``,
``not_enrolled``, ``amount_missing | amount_invalid | amount_not_integer``,
``amount_not_positive``, ``amount_over_cap``, ``amount_out_of_range``, ``duplicate_in_file``,
``already_paid``, ``already_in_batch``, ``destination_incomplete``, ``destination_missing``,
``bin_invalid``, ``bin_unknown``, ``bank_not_receiving``, ``account_number_invalid``,
``account_number_not_text``, ``too_long``, ``invalid_character``, ``row_too_many_cells``.
Errors of the whole file have no row: ``control_count_mismatch``, ``control_total_mismatch``,
``too_many_rows``, ``no_valid_rows``, and the FileProblem codes of ``disbursement.files``.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from chopay.crypto import DataKeys
from chopay.db import MAX_ID, copy_rows, utcnow
from disbursement import domain, uploads
from disbursement.domain import BatchStatus, ItemStatus, Problem
from disbursement.files import Columns, FileProblem, Row
from disbursement.models import ACCOUNT, Batch, BatchError, Beneficiary, Enrolment, PayoutItem, Program
from disbursement.services.programs import bank_problem
from disbursement.services.registry import account_index, masked, national_id_index

COLUMNS = Columns(("national_id", "full_name", "amount"), ("bin", "account_number"))
LEASE = dt.timedelta(seconds=120)
CHUNK = 5000

_ITEM_COLUMNS = (
    "batch_id",
    "row_number",
    "program_id",
    "beneficiary_id",
    "period",
    "ward",
    "amount",
    "bin",
    "account_number",
    "account_index",
    "destination_source",
    "status",
    "entitled",
    "attempts",
    "created_at",
    "updated_at",
)
_ERROR_COLUMNS = ("batch_id", "row_number", "column_name", "code", "message", "amount", "beneficiary_id")


class LeaseLost(Exception):
    """Another run of the validation holds the batch now; this one must stop."""


# ---------------------------------------------------------------------------------------------
# Lease


def claim(session: Session, batch_id: int, owner: str) -> Batch | None:
    """Take the validation lease of a validating batch; None if it is done or another run holds it."""
    batch = session.get(Batch, batch_id, with_for_update=True)
    now = utcnow()
    if batch is None or batch.status != BatchStatus.VALIDATING:
        return None
    if batch.lease_owner is not None and batch.lease_until is not None and batch.lease_until > now:
        return None
    batch.lease_owner = owner
    batch.lease_until = now + LEASE
    session.flush()
    return batch


def _held(session: Session, batch_id: int, owner: str) -> Batch:
    batch = session.get(Batch, batch_id, with_for_update=True, populate_existing=True)
    if batch is None or batch.status != BatchStatus.VALIDATING or batch.lease_owner != owner:
        raise LeaseLost(batch_id)
    batch.lease_until = utcnow() + LEASE
    return batch


def _batch_error(
    batch_id: int, code: str, message: str, row: int | None = None, column: str | None = None
) -> BatchError:
    return BatchError(
        batch_id=batch_id, row_number=row, column_name=column, code=code, message=message[:1000]
    )


def _end(session: Session, batch: Batch, status: BatchStatus) -> None:
    batch.status = domain.batch_transition(batch.status, status)
    batch.validated_at = batch.updated_at = utcnow()
    batch.lease_owner = batch.lease_until = None
    upload_id, batch.upload_id = batch.upload_id, None
    session.flush()
    if upload_id is not None:
        uploads.delete(session, upload_id)  # the file's personal data is not kept beyond validation


def fail(session: Session, batch_id: int, owner: str, problem: FileProblem) -> Batch:
    """Make the batch invalid because its file cannot be read, with a batch-level error.

    The error has no row (it concerns the file); its message names the line where reading stopped.
    """
    batch = _held(session, batch_id, owner)
    release_pending(session, batch.id)
    session.add(_batch_error(batch.id, problem.code, problem.message, None, problem.column))
    _end(session, batch, BatchStatus.INVALID)
    return batch


def release_pending(session: Session, batch_id: int) -> int:
    """Cancel a batch's pending items, freeing their entitlement keys; return how many.

    (An item that fails for good frees its key as it fails: the CHECK ``entitled_status``
    allows the key only to pending, sending and paid items.)
    """
    result = session.execute(
        sa.update(PayoutItem)
        .where(PayoutItem.batch_id == batch_id, PayoutItem.status == ItemStatus.PENDING)
        .values(status=ItemStatus.CANCELLED.value, entitled=False, updated_at=utcnow())
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------------------------
# Control totals


@dataclass
class Totals:
    """What the whole file holds: its data rows, their amounts, and rows whose amount is unreadable."""

    count: int = 0
    total: int = 0
    unreadable: list[int] = field(default_factory=list)


def count(rows: Iterable[Row]) -> Totals:
    """Count every data row of a file and add up its amounts."""
    totals = Totals()
    for row in rows:
        totals.count += 1
        amount = domain.parse_amount(row.values.get("amount", ""))
        if isinstance(amount, int):
            totals.total += amount
        elif len(totals.unreadable) < 20:
            totals.unreadable.append(row.number)
    return totals


def record_totals(session: Session, batch_id: int, owner: str, totals: Totals) -> bool:
    """Compare the file with its declared control totals; tell whether the row checks may start.

    A mismatch, or a file over the row limit, makes the batch invalid with a batch-level error
    before any row is checked.
    """
    batch = _held(session, batch_id, owner)
    batch.file_count = totals.count
    batch.file_total = totals.total if abs(totals.total) <= domain.MAX_BATCH_TOTAL else None
    errors = []
    if totals.count > domain.MAX_ROWS:
        errors.append(
            ("too_many_rows", f"The file has {totals.count:,} rows; a batch has at most {domain.MAX_ROWS:,}.")
        )
    if totals.count != batch.declared_count:
        errors.append(
            (
                "control_count_mismatch",
                f"The batch declares {batch.declared_count:,} rows "
                f"but the file has {totals.count:,} data rows.",
            )
        )
    if totals.total != batch.declared_total:
        note = ""
        if totals.unreadable:
            shown = ", ".join(map(str, totals.unreadable[:10]))
            note = f" Rows whose amount is not a whole number count as 0: rows {shown}."
        errors.append(
            (
                "control_total_mismatch",
                f"The batch declares a total of {batch.declared_total:,} dong but the file's amounts "
                f"add up to {totals.total:,}.{note}",
            )
        )
    for code, message in errors:
        session.add(_batch_error(batch.id, code, message))
    if errors:
        _end(session, batch, BatchStatus.INVALID)
        return False
    session.flush()
    return True


# ---------------------------------------------------------------------------------------------
# Row checks


class Seen:
    """The beneficiaries that earlier rows of the file named, as a bitmap of their ids."""

    def __init__(self, size: int = 0) -> None:
        self.bits = bytearray(size // 8 + 1)

    def __contains__(self, beneficiary_id: int) -> bool:
        byte = beneficiary_id >> 3
        return byte < len(self.bits) and bool(self.bits[byte] & (1 << (beneficiary_id & 7)))

    def add(self, beneficiary_ids: Iterable[int]) -> None:
        """Mark ids as seen (once their chunk has committed)."""
        for i in beneficiary_ids:
            byte = i >> 3
            if byte >= len(self.bits):
                self.bits.extend(bytes(byte - len(self.bits) + 1 + len(self.bits) // 4))
            self.bits[byte] |= 1 << (i & 7)


def seen_so_far(session: Session, batch_id: int) -> Seen:
    """Rebuild the bitmap of beneficiaries named by the rows already checked (a resumed run)."""
    top = session.scalar(sa.select(sa.func.max(Beneficiary.id))) or 0
    seen = Seen(top)
    for table in (PayoutItem, BatchError):
        ids = session.scalars(
            sa.select(table.beneficiary_id).where(
                table.batch_id == batch_id, table.beneficiary_id.is_not(None)
            )
        )
        seen.add(i for i in ids if i is not None)
    return seen


@dataclass
class _Checked:
    row: Row
    problems: list[Problem]
    amount: int | None
    index: str | None
    override: tuple[str, str] | None
    person: Any = None
    destination: tuple[str, str, str, str] | None = None


def _first_checks(row: Row, cap: int) -> _Checked:
    """Check what a row says by itself, before looking anything up."""
    problems = list(row.problems)
    values = dict(row.values)
    for name, text in row.values.items():
        if (found := domain.text_problem(name, text, domain.MAX_CELL)) is not None:
            problems.append(found)
            values[name] = ""
    national_id = values["national_id"]
    shape = domain.national_id_shape(national_id, from_number="national_id" in row.numeric)
    problems += shape
    if not domain.clean_text(values["full_name"]):
        problems.append(Problem("full_name_missing", "The full name is empty.", "full_name"))
    amount: int | None = None
    parsed = domain.parse_amount(values["amount"])
    if isinstance(parsed, Problem):
        problems.append(parsed)
    else:
        amount = parsed
        if (found := domain.amount_problem(parsed, cap)) is not None:
            problems.append(found)
    override = None
    bin_, account = values.get("bin", ""), values.get("account_number", "").upper()
    if bin_ or account:
        destination = []
        if not (bin_ and account):
            destination.append(
                Problem(
                    "destination_incomplete",
                    "Give both bin and account_number, or neither.",
                    "account_number",
                )
            )
        else:
            destination += [
                p
                for p in (
                    bank_problem(bin_),
                    domain.account_problem(account, from_number="account_number" in row.numeric),
                )
                if p
            ]
        problems += destination
        override = None if destination else (bin_, account)
    return _Checked(row, problems, amount, None if shape else national_id, override)


def check_chunk(
    session: Session,
    keys: DataKeys,
    batch_id: int,
    owner: str,
    rows: list[Row],
    seen: Seen,
    phases: dict[str, float] | None = None,
) -> list[int]:
    """Check one chunk of rows, write its items and errors and the batch's progress.

    Return the beneficiary ids the chunk named, for the caller to add to ``seen`` once the
    unit of work has committed. ``phases`` accumulates seconds spent per phase (benchmarks).
    """
    clock = time.perf_counter()
    batch = _held(session, batch_id, owner)
    program = session.get(Program, batch.program_id)
    assert program is not None
    checked = [_first_checks(row, program.cap) for row in rows]
    for c in checked:
        if c.index is not None:
            c.index = national_id_index(keys, c.index)
    people = _registry(session, {c.index for c in checked if c.index}, program.id, batch.period)
    named: dict[int, int] = {}  # beneficiary id -> first row in this chunk
    duplicates: list[_Checked] = []
    for c in checked:
        if c.index is None:
            continue
        person = people.get(c.index)
        if person is None:
            national_id = c.row.values["national_id"]
            c.problems.append(
                Problem(
                    "beneficiary_unknown",
                    f"No beneficiary with national id {masked(national_id)} is registered.",
                    "national_id",
                )
            )
            continue
        c.person = person
        _registry_checks(c, person)
        if person.id in seen or person.id in named:
            duplicates.append(c)
        else:
            named[person.id] = c.row.number
    _duplicates(session, batch.id, duplicates, named)
    _entitlements(session, batch, [c for c in checked if c.person is not None])
    written = time.perf_counter()
    _write(session, keys, batch, checked)
    if phases is not None:
        phases["checks"] = phases.get("checks", 0.0) + written - clock
        phases["writes"] = phases.get("writes", 0.0) + time.perf_counter() - written
    return list(named)


def _among(session: Session, column: Any, values: list[Any]) -> Any:
    """Return ``column IN values``: on PostgreSQL as one array parameter, not thousands of them."""
    if session.get_bind().dialect.name != "postgresql":
        return column.in_(values)
    kind = ARRAY(sa.BigInteger if isinstance(values[0], int) else sa.Text)
    return column == sa.any_(sa.cast(sa.literal(values, kind), kind))


def _registry(session: Session, indexes: set[str], program_id: int, period: str) -> dict[str, Any]:
    if not indexes:
        return {}
    enrolled = (
        sa.select(Enrolment.id)
        .where(
            Enrolment.beneficiary_id == Beneficiary.id,
            Enrolment.program_id == program_id,
            Enrolment.enrolled_from <= period,
            sa.or_(Enrolment.enrolled_to.is_(None), Enrolment.enrolled_to >= period),
        )
        .exists()
    )
    rows = session.execute(
        sa.select(
            Beneficiary.id,
            Beneficiary.national_id_index,
            Beneficiary.full_name,
            Beneficiary.name_key,
            Beneficiary.status,
            Beneficiary.ward,
            Beneficiary.bin,
            Beneficiary.account_number,
            Beneficiary.account_index,
            enrolled.label("enrolled"),
        ).where(_among(session, Beneficiary.national_id_index, list(indexes)))
    )
    return {r.national_id_index: r for r in rows}


def _registry_checks(c: _Checked, person: Any) -> None:
    """Check a row against the registry record it names."""
    name = domain.clean_text(c.row.values["full_name"])
    # The same text is the common case; folding (case, diacritics) is for the others.
    if name and name != person.full_name and domain.name_key(name) != person.name_key:
        c.problems.append(
            Problem(
                "name_mismatch",
                "The name differs from the registry's (ignoring case and diacritics).",
                "full_name",
            )
        )
    if person.status == domain.BeneficiaryStatus.SUSPENDED:
        c.problems.append(Problem("beneficiary_suspended", "The beneficiary is suspended.", "national_id"))
    elif person.status == domain.BeneficiaryStatus.DECEASED:
        c.problems.append(
            Problem("beneficiary_deceased", "The beneficiary is recorded as deceased.", "national_id")
        )
    if not person.enrolled:
        c.problems.append(
            Problem(
                "not_enrolled",
                "The beneficiary is not enrolled in this program for this period.",
                "national_id",
            )
        )
    if c.override is not None or c.row.values.get("bin") or c.row.values.get("account_number"):
        return  # the row gives its own destination (checked already)
    if person.bin is None:
        c.problems.append(
            Problem(
                "destination_missing", "The registry has no bank account for this person; give one.", "bin"
            )
        )
        return
    if (found := bank_problem(person.bin)) is not None:
        c.problems.append(Problem(found.code, f"The registry's account: {found.message}", "bin"))
        return
    c.destination = (person.bin, person.account_number, person.account_index, "registry")


def _duplicates(session: Session, batch_id: int, duplicates: list[_Checked], named: dict[int, int]) -> None:
    """Flag every row after the first that names the same beneficiary."""
    earlier = [c.person.id for c in duplicates if c.person.id not in named]
    first: dict[int, int] = {}
    if earlier:
        for table in (PayoutItem, BatchError):
            rows = session.execute(
                sa.select(table.beneficiary_id, sa.func.min(table.row_number))
                .where(table.batch_id == batch_id, table.beneficiary_id.in_(earlier))
                .group_by(table.beneficiary_id)
            )
            for beneficiary_id, row in rows:
                if beneficiary_id is not None and row is not None:
                    first[beneficiary_id] = min(row, first.get(beneficiary_id, row))
    for c in duplicates:
        at = named.get(c.person.id) or first.get(c.person.id)
        where = f" (first on row {at})" if at else ""
        c.problems.append(
            Problem(
                "duplicate_in_file", f"The file names this beneficiary more than once{where}.", "national_id"
            )
        )


def _entitlements(session: Session, batch: Batch, rows: list[_Checked]) -> None:
    """Flag rows whose (program, beneficiary, period) another batch holds or has paid."""
    ids = list({c.person.id for c in rows})
    if not ids:
        return
    held = {
        beneficiary_id: (status, batch_id)
        for beneficiary_id, status, batch_id in session.execute(
            sa.select(PayoutItem.beneficiary_id, PayoutItem.status, PayoutItem.batch_id).where(
                PayoutItem.program_id == batch.program_id,
                PayoutItem.period == batch.period,
                PayoutItem.entitled,
                _among(session, PayoutItem.beneficiary_id, ids),
                PayoutItem.batch_id != batch.id,
            )
        )
    }
    for c in rows:
        found = held.get(c.person.id)
        if found is None:
            continue
        status, other = found
        if status == ItemStatus.PAID:
            c.problems.append(
                Problem(
                    "already_paid",
                    f"This person was already paid for {batch.period} (batch {other}).",
                    "national_id",
                )
            )
        else:
            c.problems.append(
                Problem(
                    "already_in_batch",
                    f"This person is already in batch {other} for {batch.period} of this program.",
                    "national_id",
                )
            )


def _write(session: Session, keys: DataKeys, batch: Batch, checked: list[_Checked]) -> None:
    now = utcnow()
    items: list[tuple[Any, ...]] = []
    errors: list[tuple[Any, ...]] = []
    invalid = total = 0
    for c in checked:
        person_id = c.person.id if c.person is not None else None
        if c.problems:
            invalid += 1
            shown = c.amount if c.amount is not None and abs(c.amount) <= MAX_ID else None
            errors += [
                (batch.id, c.row.number, p.column, p.code, p.message, shown, person_id) for p in c.problems
            ]
            continue
        if c.override is not None:
            bin_, account = c.override
            destination = (
                bin_,
                keys.encrypt(account, ACCOUNT.context),
                account_index(keys, bin_, account),
                "file",
            )
        else:
            assert c.destination is not None
            destination = c.destination
        total += c.amount or 0
        items.append(
            (
                batch.id,
                c.row.number,
                batch.program_id,
                person_id,
                batch.period,
                c.person.ward,
                c.amount,
                *destination,
                ItemStatus.PENDING.value,
                True,
                0,
                now,
                now,
            )
        )
    # One COPY after the other: a connection runs one COPY at a time.
    for model, columns, rows in ((PayoutItem, _ITEM_COLUMNS, items), (BatchError, _ERROR_COLUMNS, errors)):
        if rows:
            with copy_rows(session, model, columns) as write:
                for row in rows:
                    write(row)
    batch.rows_checked += len(checked)
    batch.rows_valid += len(items)
    batch.rows_invalid += invalid
    batch.amount_valid += total
    batch.updated_at = now
    session.flush()


def finish(session: Session, batch_id: int, owner: str) -> Batch:
    """End the validation: ready when some row can be paid, invalid otherwise."""
    batch = _held(session, batch_id, owner)
    if batch.rows_valid == 0:
        session.add(
            _batch_error(
                batch.id,
                "no_valid_rows",
                f"None of the {batch.rows_checked:,} rows can be paid; see the rows' errors.",
            )
        )
        _end(session, batch, BatchStatus.INVALID)
    else:
        _end(session, batch, BatchStatus.READY)
    return batch

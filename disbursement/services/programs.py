"""Programs, their budget in the ledger, funding, and enrolments of beneficiaries.

Each program has three ledger accounts, opened with it (README: chart of accounts):
``program:{CODE}:budget`` (asset, never below zero), ``program:{CODE}:funding`` (equity) and
``program:{CODE}:benefits`` (expense, debited when a payout is paid). Funding debits the budget
and credits the funding account; its ledger idempotency key is the program and the funding
reference, so the same reference can never fund a program twice, whatever the HTTP retries.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from chopay.db import MAX_ID, utcnow
from disbursement import domain
from disbursement.domain import Problem
from disbursement.errors import (
    BeneficiaryNotFound,
    EnrolmentNotFound,
    EnrolmentOverlap,
    FundingConflict,
    InvalidInput,
    ProgramExists,
    ProgramNotFound,
)
from disbursement.models import Beneficiary, Enrolment, Funding, Program
from payments.ledger import services as ledger
from payments.ledger.domain import Posting, TransactionSpec
from payments.ledger.models import Account
from qr import banks

PROGRAM_FIELDS = ("name", "legal_basis", "monthly_amount", "cap", "source_bin", "source_account", "status")


def invalid(problems: list[Problem]) -> InvalidInput:
    """Return the 422 error listing ``problems`` (each with its field and stable code)."""
    first = problems[0]
    return InvalidInput(
        "; ".join(p.message for p in problems),
        code=first.code if len(problems) == 1 else "fields_invalid",
        problems=[{"field": p.column, "code": p.code, "message": p.message} for p in problems],
    )


def bank_problem(bin_: str, column: str = "bin") -> Problem | None:
    """Return why money cannot be sent to BIN ``bin_``, or None."""
    if not domain.BIN.fullmatch(bin_):
        return Problem("bin_invalid", "A BIN is the bank's 6-digit NAPAS code.", column)
    bank = banks.by_bin(bin_)
    if bank is None:
        return Problem("bin_unknown", f"No bank in the directory has the BIN {bin_}.", column)
    if not bank.receives_transfers:
        return Problem(
            "bank_not_receiving", f"{bank.short_name} (BIN {bin_}) does not receive transfers.", column
        )
    return None


def _check_program(values: Mapping[str, Any]) -> None:
    problems: list[Problem] = []
    for name, limit in (("name", domain.MAX_NAME), ("legal_basis", domain.MAX_LEGAL_BASIS)):
        if name in values:
            found = domain.text_problem(name, values[name], limit)
            if found or not values[name]:
                problems.append(found or Problem("field_required", f"{name} must not be empty.", name))
    monthly, cap = values.get("monthly_amount"), values.get("cap")
    for name, amount in (("monthly_amount", monthly), ("cap", cap)):
        if amount is not None and not 1 <= amount <= domain.MAX_AMOUNT_DONG:
            problems.append(
                Problem("amount_out_of_range", f"{name} must be 1 to {domain.MAX_AMOUNT_DONG:,} dong.", name)
            )
    if monthly is not None and cap is not None and cap < monthly:
        problems.append(Problem("cap_below_amount", "The cap cannot be below the monthly amount.", "cap"))
    if "source_bin" in values:
        found = bank_problem(values["source_bin"], "source_bin")
        if found:
            problems.append(found)
    if "source_account" in values and not domain.ACCOUNT_NUMBER.fullmatch(values["source_account"]):
        problems.append(
            Problem(
                "account_number_invalid", "An account number is 4 to 19 digits or letters.", "source_account"
            )
        )
    if problems:
        raise invalid(problems)


def create_program(session: Session, *, code: str, created_by: int | None = None, **values: Any) -> Program:
    """Create a program and open its budget, funding and benefits accounts."""
    if not domain.PROGRAM_CODE.fullmatch(code):
        raise invalid([Problem("code_invalid", "A program code is 2 to 20 of A-Z, 0-9, '_', '-'.", "code")])
    values = {k: domain.clean_text(v) if isinstance(v, str) else v for k, v in values.items()}
    _check_program(values)
    program = Program(code=code, created_by=created_by, **values)
    try:
        with session.begin_nested():
            session.add(program)
    except IntegrityError:
        raise ProgramExists(f"A program with code {code} exists.") from None
    ledger.ensure_account(session, code=domain.budget_account(code), kind="asset", allow_negative=False)
    ledger.ensure_account(session, code=domain.funding_account(code), kind="equity")
    ledger.ensure_account(session, code=domain.benefits_account(code), kind="expense")
    return program


def get_program(session: Session, code: str, *, lock: bool = False) -> Program:
    """Return the program ``code`` or raise ProgramNotFound."""
    stmt = sa.select(Program).where(Program.code == code)
    found = session.scalar(stmt.with_for_update() if lock else stmt)
    if found is None:
        raise ProgramNotFound(f"No program with code {code!r}.")
    return found


def list_programs(
    session: Session, *, status: str | None = None, after: int | None = None, limit: int = 50
) -> list[Program]:
    """Return programs in creation order after the cursor id."""
    stmt = sa.select(Program).order_by(Program.id).limit(limit)
    if status is not None:
        stmt = stmt.where(Program.status == status)
    if after is not None:
        stmt = stmt.where(Program.id > after)
    return list(session.scalars(stmt))


def update_program(session: Session, code: str, changes: Mapping[str, Any]) -> Program:
    """Change a program's fields (not its code)."""
    program = get_program(session, code, lock=True)
    values = {
        k: domain.clean_text(v) if isinstance(v, str) else v
        for k, v in changes.items()
        if k in PROGRAM_FIELDS
    }
    merged = {
        "monthly_amount": values.get("monthly_amount", program.monthly_amount),
        "cap": values.get("cap", program.cap),
        **{k: v for k, v in values.items() if k not in {"monthly_amount", "cap"}},
    }
    _check_program(merged)
    for name, value in values.items():
        setattr(program, name, value)
    program.updated_at = utcnow()
    session.flush()
    return program


def budget_balance(session: Session, code: str) -> int:
    """Return the balance of the program's budget account, in dong."""
    return ledger.balance(session, domain.budget_account(code))


def budgets(session: Session, codes: list[str]) -> dict[str, int]:
    """Return the budget balances of several programs at once."""
    accounts = {domain.budget_account(c): c for c in codes}
    rows = session.execute(sa.select(Account.code, Account.balance).where(Account.code.in_(list(accounts))))
    return {accounts[code]: balance for code, balance in rows}


def fund(session: Session, code: str, *, amount: int, reference: str, created_by: int | None) -> Funding:
    """Post a funding of the program's budget; the same reference and amount again return the first."""
    program = get_program(session, code)
    if not 1 <= amount <= domain.MAX_AMOUNT_DONG:
        raise invalid(
            [Problem("amount_out_of_range", f"amount must be 1 to {domain.MAX_AMOUNT_DONG:,}.", "amount")]
        )
    if not domain.FUNDING_REF.fullmatch(reference):
        raise invalid(
            [
                Problem(
                    "reference_invalid",
                    "A funding reference is 1 to 64 of A-Z, a-z, 0-9, '.', '_', ':', '/', '-'.",
                    "reference",
                )
            ]
        )
    existing = session.scalar(
        sa.select(Funding).where(Funding.program_id == program.id, Funding.reference == reference)
    )
    if existing is not None:
        if existing.amount != amount:
            raise FundingConflict(
                f"Funding {reference} of {code} was recorded for {existing.amount:,} dong, not {amount:,}.",
                funding=existing.id,
            )
        return existing
    spec = TransactionSpec(
        idempotency_key=f"funding:{code}:{reference}",
        kind="funding",
        memo=f"Funding of program {code}: {reference}",
        postings=[
            Posting(domain.budget_account(code), amount),
            Posting(domain.funding_account(code), -amount),
        ],
        metadata={"program": code, "funding_ref": reference},
    )
    recorded = ledger.post(session, spec)
    funding = Funding(
        program_id=program.id,
        reference=reference,
        amount=amount,
        transaction_id=recorded.id,
        created_by=created_by,
        created_at=utcnow(),
    )
    try:
        with session.begin_nested():
            session.add(funding)
    except IntegrityError:  # a concurrent request recorded the same reference first
        found = session.scalar(
            sa.select(Funding).where(Funding.program_id == program.id, Funding.reference == reference)
        )
        assert found is not None
        return found
    return funding


def list_fundings(session: Session, code: str, *, after: int | None = None, limit: int = 50) -> list[Funding]:
    """Return a program's fundings, oldest first."""
    program = get_program(session, code)
    stmt = sa.select(Funding).where(Funding.program_id == program.id).order_by(Funding.id).limit(limit)
    if after is not None:
        stmt = stmt.where(Funding.id > after)
    return list(session.scalars(stmt))


# ---------------------------------------------------------------------------------------------
# Enrolments


def _overlapping(
    session: Session,
    program_id: int,
    beneficiary_id: int,
    start: str,
    end: str | None,
    exclude: int | None = None,
) -> Enrolment | None:
    stmt = sa.select(Enrolment).where(
        Enrolment.program_id == program_id,
        Enrolment.beneficiary_id == beneficiary_id,
        sa.or_(Enrolment.enrolled_to.is_(None), Enrolment.enrolled_to >= start),
    )
    if end is not None:
        stmt = stmt.where(Enrolment.enrolled_from <= end)
    if exclude is not None:
        stmt = stmt.where(Enrolment.id != exclude)
    return session.scalar(stmt.limit(1))


def enrol(
    session: Session,
    program: Program,
    beneficiary_id: int,
    *,
    enrolled_from: str,
    enrolled_to: str | None = None,
    monthly_amount: int | None = None,
    created_by: int | None = None,
) -> Enrolment:
    """Enrol a beneficiary in ``program`` for a period range; ranges of one person never overlap."""
    amount = program.monthly_amount if monthly_amount is None else monthly_amount
    problems = []
    if enrolled_to is not None and enrolled_to < enrolled_from:
        problems.append(Problem("period_order", "enrolled_to is before enrolled_from.", "enrolled_to"))
    found = domain.amount_problem(amount, program.cap)
    if found:
        problems.append(Problem(found.code, found.message, "monthly_amount"))
    if problems:
        raise invalid(problems)
    # The beneficiary's row lock serialises enrolments of one person, so two overlapping
    # ranges cannot both pass the check.
    person = session.get(Beneficiary, beneficiary_id, with_for_update=True)
    if person is None:
        raise BeneficiaryNotFound(f"No beneficiary with id {beneficiary_id}.")
    clash = _overlapping(session, program.id, beneficiary_id, enrolled_from, enrolled_to)
    if clash is not None:
        raise EnrolmentOverlap(
            f"Beneficiary {beneficiary_id} is enrolled in {program.code} from {clash.enrolled_from}"
            f" to {clash.enrolled_to or 'open end'} already.",
            enrolment=clash.id,
        )
    enrolment = Enrolment(
        program_id=program.id,
        beneficiary_id=beneficiary_id,
        monthly_amount=amount,
        enrolled_from=enrolled_from,
        enrolled_to=enrolled_to,
        created_by=created_by,
    )
    session.add(enrolment)
    session.flush()
    return enrolment


def get_enrolment(session: Session, program: Program, enrolment_id: int) -> Enrolment:
    """Return an enrolment of ``program`` or raise EnrolmentNotFound."""
    found = session.get(Enrolment, enrolment_id) if 1 <= enrolment_id <= MAX_ID else None
    if found is None or found.program_id != program.id:
        raise EnrolmentNotFound(f"No enrolment {enrolment_id} in program {program.code}.")
    return found


def end_enrolment(session: Session, program: Program, enrolment_id: int, enrolled_to: str) -> Enrolment:
    """End an enrolment with the period ``enrolled_to`` (its last paid month)."""
    enrolment = get_enrolment(session, program, enrolment_id)
    if enrolled_to < enrolment.enrolled_from:
        raise invalid([Problem("period_order", "enrolled_to is before enrolled_from.", "enrolled_to")])
    if enrolment.enrolled_to is not None and enrolled_to > enrolment.enrolled_to:
        raise invalid(
            [
                Problem(
                    "period_order", f"The enrolment already ends in {enrolment.enrolled_to}.", "enrolled_to"
                )
            ]
        )
    enrolment.enrolled_to = enrolled_to
    enrolment.updated_at = utcnow()
    session.flush()
    return enrolment


def list_enrolments(
    session: Session,
    program: Program,
    *,
    beneficiary_id: int | None = None,
    active_in: str | None = None,
    after: int | None = None,
    limit: int = 50,
) -> list[Enrolment]:
    """Return a program's enrolments, oldest first; optionally one person's, or those covering a period."""
    stmt = sa.select(Enrolment).where(Enrolment.program_id == program.id).order_by(Enrolment.id).limit(limit)
    if beneficiary_id is not None:
        stmt = stmt.where(Enrolment.beneficiary_id == beneficiary_id)
    if active_in is not None:
        stmt = stmt.where(
            Enrolment.enrolled_from <= active_in,
            sa.or_(Enrolment.enrolled_to.is_(None), Enrolment.enrolled_to >= active_in),
        )
    if after is not None:
        stmt = stmt.where(Enrolment.id > after)
    return list(session.scalars(stmt))


def today_period() -> str:
    """Return the current period in Vietnam (UTC+7)."""
    return domain.period_of((utcnow() + dt.timedelta(hours=7)).date())

"""The beneficiary registry: records, their history, lookups, and what a response may show.

National ids, phones and account numbers are encrypted before they reach the session and
decrypted only to be masked (``0********123``) or compared. Lookups by national id go through
the blind index, and names are searched by their folded key (no case, no diacritics), so no
query ever carries a plaintext identifier to the database. Every change is recorded in
``beneficiary_history``, personal values masked there too.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from chopay.crypto import DataKeys, mask
from chopay.db import MAX_ID, utcnow
from disbursement import domain
from disbursement.domain import Problem
from disbursement.errors import BeneficiaryExists, BeneficiaryNotFound
from disbursement.models import (
    ACCOUNT,
    ACCOUNT_INDEX,
    NATIONAL_ID,
    NATIONAL_ID_INDEX,
    PHONE,
    Beneficiary,
    BeneficiaryChange,
)
from disbursement.services.programs import bank_problem, invalid

FIELDS = (
    "national_id",
    "full_name",
    "date_of_birth",
    "gender",
    "ward",
    "province",
    "phone",
    "bin",
    "account_number",
    "status",
)
PERSONAL = frozenset({"national_id", "phone", "account_number"})
_DESTINATION = ("bin", "account_number", "account_index")
_COLUMNS_OF = {
    "national_id": ("national_id", "national_id_index"),
    "full_name": ("full_name", "name_key"),
    "bin": _DESTINATION,
    "account_number": _DESTINATION,
}
"""The stored columns that a field's value determines."""


def masked(value: str | None) -> str | None:
    """Mask a personal value for display: its first and last three characters show."""
    return None if value is None else mask(value, 3, 1)


def check(
    values: Mapping[str, Any], numeric: frozenset[str] = frozenset()
) -> tuple[dict[str, Any], list[Problem]]:
    """Clean a whole record (typed values) and return it with every problem found.

    ``numeric`` names the fields that came from number cells of a spreadsheet.
    """
    clean: dict[str, Any] = {}
    problems: list[Problem] = []
    for name, limit in (
        ("full_name", domain.MAX_NAME),
        ("ward", domain.MAX_PLACE),
        ("province", domain.MAX_PLACE),
    ):
        text = domain.clean_text(values.get(name) or "")
        found = domain.text_problem(name, text, limit)
        if found is None and not text:
            found = Problem("field_required", f"{name} is required.", name)
        if found:
            problems.append(found)
        clean[name] = text
    born: dt.date | None = values.get("date_of_birth")
    if born is None:
        problems.append(Problem("field_required", "date_of_birth is required.", "date_of_birth"))
    elif not domain.EARLIEST_BIRTH <= born <= utcnow().date():
        problems.append(
            Problem(
                "date_of_birth_invalid", "date_of_birth must lie between 1900 and today.", "date_of_birth"
            )
        )
    clean["date_of_birth"] = born
    gender = values.get("gender")
    if gender not in set(domain.Gender):
        problems.append(Problem("gender_invalid", "gender is male or female.", "gender"))
    clean["gender"] = gender
    national_id = (values.get("national_id") or "").strip()
    if born is not None and gender in set(domain.Gender) and "national_id" not in numeric:
        problems += domain.national_id_problems(national_id, born, gender)
    else:
        problems += domain.national_id_shape(national_id, from_number="national_id" in numeric)
    clean["national_id"] = national_id
    phone = domain.normalize_phone(values.get("phone") or "")
    if phone:
        found = domain.phone_problem(phone, from_number="phone" in numeric)
        if found:
            problems.append(found)
    clean["phone"] = phone or None
    bin_ = (values.get("bin") or "").strip() or None
    account = (values.get("account_number") or "").strip().upper() or None
    if (bin_ is None) != (account is None):
        problems.append(
            Problem(
                "destination_incomplete", "Give both bin and account_number, or neither.", "account_number"
            )
        )
    if bin_ is not None and (found := bank_problem(bin_)):
        problems.append(found)
    if account is not None and (
        found := domain.account_problem(account, from_number="account_number" in numeric)
    ):
        problems.append(found)
    clean["bin"], clean["account_number"] = bin_, account
    status = values.get("status") or domain.BeneficiaryStatus.ACTIVE.value
    if status not in set(domain.BeneficiaryStatus):
        problems.append(Problem("status_invalid", "status is active, suspended or deceased.", "status"))
    clean["status"] = status
    return clean, problems


def national_id_index(keys: DataKeys, national_id: str) -> str:
    """Return the blind index of a national id."""
    return keys.blind_index(national_id, NATIONAL_ID_INDEX)


def account_index(keys: DataKeys, bin_: str, account: str) -> str:
    """Return the blind index of a destination (BIN and account number together)."""
    return keys.blind_index(f"{bin_}:{account}", ACCOUNT_INDEX)


def _columns(keys: DataKeys, clean: Mapping[str, Any]) -> dict[str, Any]:
    """Return the stored columns of a clean record: personal values sealed, indexes computed."""
    out = {k: clean[k] for k in ("full_name", "date_of_birth", "gender", "ward", "province", "bin", "status")}
    out["national_id"] = keys.encrypt(clean["national_id"], NATIONAL_ID.context)
    out["national_id_index"] = national_id_index(keys, clean["national_id"])
    out["name_key"] = domain.name_key(clean["full_name"])
    out["phone"] = keys.encrypt(clean["phone"], PHONE.context) if clean["phone"] else None
    account = clean["account_number"]
    out["account_number"] = keys.encrypt(account, ACCOUNT.context) if account else None
    out["account_index"] = account_index(keys, clean["bin"], account) if account else None
    return out


def plain(keys: DataKeys, person: Beneficiary) -> dict[str, Any]:
    """Return a record's fields with personal values decrypted (for comparison, never for display)."""
    return {
        "national_id": keys.decrypt(person.national_id, NATIONAL_ID.context),
        "full_name": person.full_name,
        "date_of_birth": person.date_of_birth,
        "gender": person.gender,
        "ward": person.ward,
        "province": person.province,
        "phone": keys.decrypt(person.phone, PHONE.context) if person.phone else None,
        "bin": person.bin,
        "account_number": keys.decrypt(person.account_number, ACCOUNT.context)
        if person.account_number
        else None,
        "status": person.status,
    }


def create(
    session: Session, keys: DataKeys, values: Mapping[str, Any], *, created_by: int | None = None
) -> Beneficiary:
    """Register a beneficiary; the national id must be valid and not registered yet."""
    clean, problems = check(values)
    if problems:
        raise invalid(problems)
    return insert(session, keys, clean, created_by=created_by)


def insert(
    session: Session, keys: DataKeys, clean: Mapping[str, Any], *, created_by: int | None
) -> Beneficiary:
    """Insert a checked record; raise BeneficiaryExists if its national id is registered."""
    person = Beneficiary(created_by=created_by, **_columns(keys, clean))
    try:
        with session.begin_nested():
            session.add(person)
    except IntegrityError:
        found = find(session, keys, clean["national_id"])
        raise BeneficiaryExists(
            "A beneficiary with this national id is registered.", beneficiary_id=found.id if found else None
        ) from None
    return person


def get(session: Session, beneficiary_id: int, *, lock: bool = False) -> Beneficiary:
    """Return a beneficiary by id or raise BeneficiaryNotFound."""
    found = (
        session.get(Beneficiary, beneficiary_id, with_for_update=lock)
        if 1 <= beneficiary_id <= MAX_ID
        else None
    )
    if found is None:
        raise BeneficiaryNotFound(f"No beneficiary with id {beneficiary_id}.")
    return found


def find(session: Session, keys: DataKeys, national_id: str) -> Beneficiary | None:
    """Return the beneficiary with ``national_id`` (through its blind index), if registered."""
    return session.scalar(
        sa.select(Beneficiary).where(
            Beneficiary.national_id_index == national_id_index(keys, national_id.strip())
        )
    )


@dataclass(frozen=True)
class Changed:
    """The outcome of applying values to a record."""

    person: Beneficiary
    fields: tuple[str, ...]


def update(
    session: Session,
    keys: DataKeys,
    person: Beneficiary,
    changes: Mapping[str, Any],
    *,
    changed_by: int | None,
    source: str = "api",
    numeric: frozenset[str] = frozenset(),
) -> Changed:
    """Apply ``changes`` to a record, checking the whole result; record what changed in its history."""
    before = plain(keys, person)
    merged = {**before, **{k: v for k, v in changes.items() if k in FIELDS}}
    clean, problems = check(merged, numeric)
    if problems:
        raise invalid(problems)
    differ = tuple(name for name in FIELDS if clean[name] != before[name])
    if not differ:
        return Changed(person, ())
    if "national_id" in differ:
        other = find(session, keys, clean["national_id"])
        if other is not None and other.id != person.id:
            raise BeneficiaryExists("Another beneficiary has this national id.", beneficiary_id=other.id)
    columns = _columns(keys, clean)
    for name in differ:
        for column in _COLUMNS_OF.get(name, (name,)):
            setattr(person, column, columns[column])
    person.version += 1
    person.updated_at = utcnow()
    session.add(
        BeneficiaryChange(
            beneficiary_id=person.id,
            version=person.version,
            changes={name: [_shown(name, before[name]), _shown(name, clean[name])] for name in differ},
            source=source,
            changed_by=changed_by,
            changed_at=utcnow(),
        )
    )
    session.flush()
    return Changed(person, differ)


def _shown(name: str, value: Any) -> Any:
    if value is None:
        return None
    if name in PERSONAL:
        return masked(str(value))
    return value.isoformat() if isinstance(value, dt.date) else value


def history(
    session: Session, beneficiary_id: int, *, after: int | None = None, limit: int = 50
) -> list[BeneficiaryChange]:
    """Return the changes of a record, oldest first."""
    get(session, beneficiary_id)
    stmt = (
        sa.select(BeneficiaryChange)
        .where(BeneficiaryChange.beneficiary_id == beneficiary_id)
        .order_by(BeneficiaryChange.id)
        .limit(limit)
    )
    if after is not None:
        stmt = stmt.where(BeneficiaryChange.id > after)
    return list(session.scalars(stmt))


def search(
    session: Session,
    *,
    name: str | None = None,
    status: str | None = None,
    ward: str | None = None,
    province: str | None = None,
    after: int | None = None,
    limit: int = 50,
) -> list[Beneficiary]:
    """Return beneficiaries in id order; ``name`` matches ignoring case, diacritics and spaces."""
    stmt = sa.select(Beneficiary).order_by(Beneficiary.id).limit(limit)
    if name:
        key = domain.name_key(name).replace("\\", "").replace("%", "").replace("_", "")
        stmt = stmt.where(Beneficiary.name_key.contains(key, autoescape=True))
    if status:
        stmt = stmt.where(Beneficiary.status == status)
    if ward:
        stmt = stmt.where(Beneficiary.ward == domain.clean_text(ward))
    if province:
        stmt = stmt.where(Beneficiary.province == domain.clean_text(province))
    if after is not None:
        stmt = stmt.where(Beneficiary.id > after)
    return list(session.scalars(stmt))


def view(keys: DataKeys, person: Beneficiary) -> dict[str, Any]:
    """Return what a response shows of a record: personal values masked."""
    values = plain(keys, person)
    return {
        "id": person.id,
        "national_id": masked(values["national_id"]),
        "full_name": person.full_name,
        "date_of_birth": person.date_of_birth,
        "gender": person.gender,
        "ward": person.ward,
        "province": person.province,
        "phone": masked(values["phone"]),
        "bin": person.bin,
        "account_number": masked(values["account_number"]),
        "status": person.status,
        "version": person.version,
        "created_at": person.created_at,
        "updated_at": person.updated_at,
    }

"""The merchant registry: records, their checks, status history, lookups and visibility.

Every field is checked here, not only in the API schema, so that a file import applies the
same rules as ``POST /v1/merchants`` and reports them with the same codes. Text is stored
NFC; the QR name and city are ASCII. The phone is encrypted before it reaches the session and
is only ever shown masked.

A merchant user sees only its own merchant: :func:`get_visible` answers another merchant's id
exactly as it answers an id that does not exist, so ids cannot be probed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from flask import g, has_request_context
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from chopay.crypto import DataKeys, mask
from chopay.db import utcnow
from chopay.users import Role, User
from disbursement.domain import Problem, clean_text, normalize_phone, phone_problem, text_problem
from disbursement.services.programs import bank_problem
from merchants import domain
from merchants.domain import MerchantStatus
from merchants.errors import InvalidInput, MerchantExists, MerchantNotFound, StatusConflict
from merchants.models import PHONE, Merchant, MerchantStatusChange
from qr.text import is_printable_ascii

FIELDS = (
    "display_name",
    "qr_name",
    "market_code",
    "market_name",
    "stall",
    "ward",
    "province",
    "city",
    "phone",
    "bin",
    "account_number",
    "account_holder",
    "mcc",
)
REQUIRED = frozenset(
    {"display_name", "market_code", "market_name", "stall", "ward", "province", "bin", "account_number"}
    | {"account_holder"}
)
_TEXT_LIMITS = {
    "display_name": domain.MAX_NAME,
    "market_name": domain.MAX_PLACE,
    "ward": domain.MAX_PLACE,
    "province": domain.MAX_PLACE,
    "account_holder": domain.MAX_HOLDER,
}
_PUBLIC_ID_ATTEMPTS = 5


def invalid(problems: list[Problem]) -> InvalidInput:
    """Return the 422 error listing ``problems``: field errors, and each problem's stable code."""
    errors: dict[str, list[str]] = {}
    for p in problems:
        errors.setdefault(p.column or "_schema", []).append(p.message)
    return InvalidInput(
        "Invalid input. " + "; ".join(f"{p.column}: {p.message.rstrip('.')}" for p in problems) + ".",
        code=problems[0].code if len(problems) == 1 else "fields_invalid",
        errors=errors,
        problems=[{"field": p.column, "code": p.code, "message": p.message} for p in problems],
    )


def _required(name: str) -> Problem:
    return Problem("field_required", f"{name} must not be empty.", name)


def check_fields(
    values: Mapping[str, Any], current: Merchant | None = None
) -> tuple[dict[str, Any], list[Problem]]:
    """Return the cleaned values of a merchant's fields and every problem with them.

    ``current`` is the merchant being edited (only the given fields are checked, and a QR
    name that was derived from the old display name follows the new one); without it every
    required field must be present and the QR name and city are derived when missing.
    """
    clean: dict[str, Any] = {}
    problems: list[Problem] = []
    for name, value in values.items():
        if name not in FIELDS:
            continue
        text = clean_text(value) if isinstance(value, str) else value
        if text is None or text == "":
            if name in REQUIRED or (current is not None and name in {"qr_name", "city", "mcc"}):
                problems.append(_required(name))
            elif name == "phone" and current is not None:
                clean["phone"] = None  # an edit that removes the phone
            continue
        clean[name] = text
    if current is None:
        problems.extend(_required(n) for n in sorted(REQUIRED - clean.keys()) if n not in _columns(problems))
    for name, limit in _TEXT_LIMITS.items():
        if name in clean and (found := text_problem(name, clean[name], limit)):
            problems.append(found)
    _check_codes(clean, problems)
    _check_qr_text(clean, current, problems)
    if clean.get("phone"):
        clean["phone"] = normalize_phone(clean["phone"])
        if found := phone_problem(clean["phone"]):
            problems.append(found)
    if "account_number" in clean:
        clean["account_number"] = clean["account_number"].upper()
        if not domain.ACCOUNT_NUMBER.fullmatch(clean["account_number"]):
            problems.append(
                Problem(
                    "account_number_invalid",
                    "An account number is 6 to 19 digits or letters.",
                    "account_number",
                )
            )
    if "bin" in clean and (found := bank_problem(clean["bin"])):
        problems.append(found)
    if current is None:
        clean.setdefault("mcc", domain.DEFAULT_MCC)
    return clean, problems


def _columns(problems: list[Problem]) -> set[str | None]:
    return {p.column for p in problems}


def _check_codes(clean: dict[str, Any], problems: list[Problem]) -> None:
    if "market_code" in clean and not domain.MARKET_CODE.fullmatch(clean["market_code"]):
        problems.append(
            Problem(
                "market_code_invalid",
                f"A market code is 1 to {domain.MAX_MARKET_CODE} letters, digits, '-' or '_'.",
                "market_code",
            )
        )
    if "mcc" in clean and not domain.MCC.fullmatch(clean["mcc"]):
        problems.append(Problem("mcc_invalid", "An MCC is four digits, e.g. 5499.", "mcc"))


def _check_qr_text(clean: dict[str, Any], current: Merchant | None, problems: list[Problem]) -> None:
    """Derive or check the QR name, the city and the stall, which go into the QR as ASCII."""
    if "qr_name" not in clean and "display_name" in clean:
        follows = current is None or current.qr_name == domain.qr_name_of(current.display_name)
        if follows:
            derived = domain.qr_name_of(clean["display_name"])
            if derived:
                clean["qr_name"] = derived
            elif current is None:
                problems.append(
                    Problem(
                        "qr_name_not_ascii",
                        "The display name has no letters that can be written in ASCII; give a qr_name.",
                        "qr_name",
                    )
                )
    if "city" not in clean and current is None and "province" in clean:
        city = domain.qr_city_of(clean["province"])
        if city:
            clean["city"] = city
        else:
            problems.append(_required("city"))
    for name, limit in (
        ("qr_name", domain.QR_NAME_LIMIT),
        ("city", domain.QR_CITY_LIMIT),
        ("stall", domain.STALL_LIMIT),
    ):
        if name not in clean:
            continue
        if not is_printable_ascii(clean[name]):
            problems.append(
                Problem(f"{name}_not_ascii", f"{name} goes into the QR code: printable ASCII only.", name)
            )
        elif len(clean[name]) > limit:
            problems.append(Problem("too_long", f"{name} has more than {limit} characters.", name))


def find_active_by_account(session: Session, bin: str, account_number: str) -> Merchant | None:
    """Return the active merchant paid at (``bin``, ``account_number``), or None."""
    return session.scalar(
        sa.select(Merchant).where(
            Merchant.bin == bin,
            Merchant.account_number == account_number.upper(),
            Merchant.status == MerchantStatus.ACTIVE,
        )
    )


def _exists(
    session: Session, bin_: str, account: str, *, besides: int | None = None
) -> MerchantExists | None:
    found = find_active_by_account(session, bin_, account)
    if found is None or found.id == besides:
        return None
    return MerchantExists(
        f"Merchant {found.public_id} ({found.display_name}) is already registered and active "
        "at this bank account.",
        existing={"id": found.public_id, "display_name": found.display_name, "stall": found.stall},
    )


def create(session: Session, keys: DataKeys, values: Mapping[str, Any], *, by: int | None = None) -> Merchant:
    """Register a merchant; 422 on a bad field, 409 naming the active merchant at the same account."""
    clean, problems = check_fields(values)
    if problems:
        raise invalid(problems)
    conflict = _exists(session, clean["bin"], clean["account_number"])
    if conflict is not None:
        raise conflict
    phone = clean.pop("phone", None)
    merchant = Merchant(
        **clean,
        name_key=domain.search_key(clean["display_name"]),
        phone=keys.encrypt(phone, PHONE.context) if phone else None,
        status=MerchantStatus.ACTIVE.value,
        created_by=by,
    )
    for _ in range(_PUBLIC_ID_ATTEMPTS):
        merchant.public_id = domain.new_public_id()
        try:
            with session.begin_nested():
                session.add(merchant)
                session.flush()
        except IntegrityError:
            # Either a concurrent registration took the account, or (rarely) the public id.
            conflict = _exists(session, clean["bin"], clean["account_number"])
            if conflict is not None:
                raise conflict from None
            continue
        session.add(MerchantStatusChange(merchant_id=merchant.id, to_status=merchant.status, changed_by=by))
        session.flush()
        return merchant
    raise RuntimeError("could not draw an unused merchant public id")


def get(session: Session, public_id: str, *, lock: bool = False) -> Merchant:
    """Return the merchant with ``public_id`` or raise MerchantNotFound."""
    stmt = sa.select(Merchant).where(Merchant.public_id == public_id)
    found = session.scalar(stmt.with_for_update() if lock else stmt)
    if found is None:
        raise not_found(public_id)
    return found


def not_found(public_id: str) -> MerchantNotFound:
    """Return the 404 of a merchant id that does not exist or is not the caller's."""
    return MerchantNotFound(f"No merchant with id {public_id}.")


def _caller() -> User | None:
    user: User | None = g.get("user") if has_request_context() else None
    return user


def visible_to(user: User | None, merchant: Merchant) -> bool:
    """Tell whether ``user`` may see ``merchant``: a merchant user sees only its own."""
    return user is None or user.role != Role.MERCHANT or user.merchant_id == merchant.id


def get_visible(
    session: Session, public_id: str, *, lock: bool = False, user: User | None = None
) -> Merchant:
    """Return the merchant if the caller may see it; 404 (as for a missing id) otherwise.

    The caller is ``user``, or the request's authenticated user. Officers, admins and the
    other staff roles see every merchant; outside a request (jobs, commands) everything is visible.
    """
    merchant = session.scalar(sa.select(Merchant).where(Merchant.public_id == public_id))
    if merchant is None or not visible_to(user if user is not None else _caller(), merchant):
        raise not_found(public_id)
    if lock:
        session.refresh(merchant, with_for_update=True)
    return merchant


def update(
    session: Session, keys: DataKeys, merchant: Merchant, values: Mapping[str, Any], *, by: int | None = None
) -> Merchant:
    """Change a merchant's fields; a new account is checked against the active merchants."""
    clean, problems = check_fields(values, current=merchant)
    if problems:
        raise invalid(problems)
    bin_ = clean.get("bin", merchant.bin)
    account = clean.get("account_number", merchant.account_number)
    if merchant.status == MerchantStatus.ACTIVE and (
        conflict := _exists(session, bin_, account, besides=merchant.id)
    ):
        raise conflict
    if clean.get("phone"):
        clean["phone"] = keys.encrypt(clean["phone"], PHONE.context)
    for name, value in clean.items():
        setattr(merchant, name, value)
    if "display_name" in clean:
        merchant.name_key = domain.search_key(clean["display_name"])
    merchant.updated_at = utcnow()
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        raise _exists(session, bin_, account, besides=merchant.id) or StatusConflict(
            "The merchant changed meanwhile; try again."
        ) from None
    return merchant


def change_status(
    session: Session, merchant: Merchant, status: str, *, reason: str | None = None, by: int | None = None
) -> MerchantStatusChange:
    """Move a merchant to ``status`` and record who did it, when and why.

    Reactivating a suspended merchant is refused (409 naming it) when another merchant has
    become active at the same account meanwhile.
    """
    session.refresh(merchant, with_for_update=True)
    current = merchant.status
    if current == status:
        raise StatusConflict(f"Merchant {merchant.public_id} is already {status}.", code="status_unchanged")
    if not domain.merchant_transition_allowed(current, status):
        raise StatusConflict(f"A {current} merchant cannot become {status}.")
    if status == MerchantStatus.ACTIVE and (
        conflict := _exists(session, merchant.bin, merchant.account_number, besides=merchant.id)
    ):
        raise conflict
    merchant.status = status
    merchant.updated_at = utcnow()
    change = MerchantStatusChange(
        merchant_id=merchant.id, from_status=current, to_status=status, reason=reason, changed_by=by
    )
    session.add(change)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        raise _exists(session, merchant.bin, merchant.account_number, besides=merchant.id) or StatusConflict(
            "The merchant changed meanwhile; try again."
        ) from None
    return change


def history(
    session: Session, merchant: Merchant, *, after: int | None = None, limit: int | None = None
) -> list[MerchantStatusChange]:
    """Return a merchant's status changes, oldest first (``limit + 1`` of them after ``after``)."""
    stmt = (
        sa.select(MerchantStatusChange)
        .where(MerchantStatusChange.merchant_id == merchant.id)
        .order_by(MerchantStatusChange.id)
    )
    if after is not None:
        stmt = stmt.where(MerchantStatusChange.id > after)
    if limit is not None:
        stmt = stmt.limit(limit + 1)
    return list(session.scalars(stmt))


def search(
    session: Session,
    *,
    user: User | None = None,
    market: str | None = None,
    ward: str | None = None,
    status: str | None = None,
    q: str | None = None,
    after: int | None = None,
    limit: int = 50,
) -> list[Merchant]:
    """Return up to ``limit + 1`` merchants by id after ``after``, filtered; a merchant user sees its own."""
    stmt = sa.select(Merchant).order_by(Merchant.id).limit(limit + 1)
    if user is not None and user.role == Role.MERCHANT:
        stmt = stmt.where(Merchant.id == user.merchant_id)
    if after is not None:
        stmt = stmt.where(Merchant.id > after)
    if market:
        stmt = stmt.where(Merchant.market_code == market)
    if ward:
        stmt = stmt.where(Merchant.ward == clean_text(ward))
    if status:
        stmt = stmt.where(Merchant.status == status)
    if q is not None:
        key = domain.search_key(q)
        if key:
            stmt = stmt.where(Merchant.name_key.contains(key, autoescape=True))
    return list(session.scalars(stmt))


def view(keys: DataKeys, merchant: Merchant) -> dict[str, Any]:
    """Return what a response shows of a merchant: every field, the phone masked."""
    phone = keys.decrypt(merchant.phone, PHONE.context) if merchant.phone else None
    return {
        "id": merchant.public_id,
        "number": merchant.id,
        **{name: getattr(merchant, name) for name in FIELDS if name != "phone"},
        "phone": mask(phone, 3) if phone else None,
        "status": merchant.status,
        "created_at": merchant.created_at,
        "updated_at": merchant.updated_at,
    }


def public_view(merchant: Merchant) -> dict[str, Any]:
    """Return what anyone may see of a merchant: no holder name, no phone, no account number."""
    return {
        "id": merchant.public_id,
        "display_name": merchant.display_name,
        "qr_name": merchant.qr_name,
        "market_code": merchant.market_code,
        "market_name": merchant.market_name,
        "stall": merchant.stall,
        "ward": merchant.ward,
        "province": merchant.province,
        "status": merchant.status,
    }

"""API users, their roles and their bearer tokens.

A token is ``cp_`` followed by 43 URL-safe characters (32 random bytes). Only its SHA-256 is
stored: tokens carry 256 bits of entropy, so a slow password hash would add latency to every
request without adding safety. The first characters are kept as a non-secret hint so an
operator can tell tokens apart in ``chopay users list``.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import hmac
import secrets
import string
import unicodedata
from dataclasses import dataclass
from typing import cast

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, Session, mapped_column

from chopay.db import MAX_ID, Base, CreatedAt, intpk, utcnow
from chopay.errors import Conflict, NotFound, Unauthorized, Unprocessable

TOKEN_PREFIX = "cp_"
TOKEN_BYTES = 32
_TOKEN_BODY_LEN = 43  # len(base64url(32 bytes)) without padding
_TOKEN_ALPHABET = frozenset(string.ascii_letters + string.digits + "-_")
NAME_MAX = 120
NAME_PATTERN = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
"""A name has something besides white space, and no control character."""


class Role(enum.StrEnum):
    ADMIN = "admin"
    OFFICER = "officer"
    APPROVER = "approver"
    AUDITOR = "auditor"
    MERCHANT = "merchant"


class User(Base):
    __tablename__ = "users"

    id: Mapped[intpk]
    name: Mapped[str] = mapped_column(sa.String(NAME_MAX))
    role: Mapped[str] = mapped_column(sa.String(16))
    merchant_id: Mapped[int | None]
    token_hash: Mapped[bytes] = mapped_column(sa.LargeBinary(32), unique=True)
    token_hint: Mapped[str] = mapped_column(sa.String(12))
    created_at: Mapped[CreatedAt]
    created_by: Mapped[int | None]
    revoked_at: Mapped[dt.datetime | None]

    __table_args__ = (
        sa.CheckConstraint(
            "role IN ('admin', 'officer', 'approver', 'auditor', 'merchant')", name="role_known"
        ),
        sa.CheckConstraint("(role = 'merchant') = (merchant_id IS NOT NULL)", name="merchant_binding"),
    )

    @property
    def active(self) -> bool:
        """Tell whether the user's token still works."""
        return self.revoked_at is None


@dataclass(frozen=True)
class IssuedUser:
    """A freshly created user and the token that is shown only this once."""

    user: User
    token: str


def new_token() -> str:
    """Return a fresh random bearer token."""
    return TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)


def hash_token(token: str) -> bytes:
    """Return the stored form of ``token``."""
    return hashlib.sha256(token.encode("utf-8")).digest()


def is_well_formed(token: str) -> bool:
    """Tell whether ``token`` has the shape of a chopay token."""
    body = token[len(TOKEN_PREFIX) :]
    return (
        token.startswith(TOKEN_PREFIX)
        and len(body) == _TOKEN_BODY_LEN
        and all(c in _TOKEN_ALPHABET for c in body)
    )


def create_user(
    session: Session, *, name: str, role: str, merchant_id: int | None = None, created_by: int | None = None
) -> IssuedUser:
    """Create a user with a new token; the token is returned once and never stored."""
    name = unicodedata.normalize("NFC", name).strip()
    if not name:
        raise Unprocessable("A user needs a name.", code="name_required")
    if len(name) > NAME_MAX:
        raise Unprocessable(f"A user's name has at most {NAME_MAX} characters.", code="name_too_long")
    if any(unicodedata.category(c) == "Cc" for c in name):
        # PostgreSQL refuses NUL in text, and control characters have no place in a name.
        raise Unprocessable("A user's name must not contain control characters.", code="name_invalid")
    try:
        role = Role(role).value
    except ValueError:
        raise Unprocessable(
            f"Unknown role {role!r}; expected one of {', '.join(r.value for r in Role)}.", code="role_unknown"
        ) from None
    if merchant_id is not None and not 1 <= merchant_id <= MAX_ID:
        raise Unprocessable(f"No merchant can have id {merchant_id}.", code="merchant_id_invalid")
    if role == Role.MERCHANT and merchant_id is None:
        raise Unprocessable("A merchant user must be bound to a merchant.", code="merchant_required")
    if role != Role.MERCHANT and merchant_id is not None:
        raise Unprocessable("Only merchant users are bound to a merchant.", code="merchant_not_allowed")
    token = new_token()
    user = User(
        name=name,
        role=role,
        merchant_id=merchant_id,
        token_hash=hash_token(token),
        token_hint=token[:8],
        created_by=created_by,
    )
    session.add(user)
    session.flush()
    return IssuedUser(user, token)


def list_users(session: Session, *, after: int | None = None, limit: int = 50) -> list[User]:
    """Return users ordered by id, starting after the cursor id."""
    stmt = sa.select(User).order_by(User.id).limit(limit)
    if after is not None:
        stmt = stmt.where(User.id > after)
    return list(session.scalars(stmt))


def get_user(session: Session, user_id: int) -> User:
    """Return the user with ``user_id`` or raise NotFound."""
    user = session.get(User, user_id) if 1 <= user_id <= MAX_ID else None
    if user is None:
        raise NotFound(f"No user with id {user_id}.", code="user_not_found")
    return user


def revoke_user(session: Session, user_id: int, *, by: int | None = None) -> User:
    """Revoke the user's token at once; revoking twice, or revoking yourself, is a conflict.

    Nobody revokes their own token: an admin who did would lock themselves out, and perhaps
    the service with them (see ``chopay users create`` for a new admin on the server).
    """
    if not 1 <= user_id <= MAX_ID:
        raise NotFound(f"No user with id {user_id}.", code="user_not_found")
    if by is not None and by == user_id:
        raise Conflict("You cannot revoke your own token; ask another admin.", code="cannot_revoke_self")
    user = session.get(User, user_id, with_for_update=True)
    if user is None:
        raise NotFound(f"No user with id {user_id}.", code="user_not_found")
    if user.revoked_at is not None:
        raise Conflict(f"User {user_id} is already revoked.", code="user_already_revoked")
    user.revoked_at = utcnow()
    session.flush()
    return user


_USERS = cast(sa.Table, User.__table__)
_BY_TOKEN = sa.select(_USERS).where(_USERS.c.token_hash == sa.bindparam("digest"))


def authenticate(bind: Session | sa.Connection, token: str) -> User:
    """Return the active user holding ``token``, or raise Unauthorized with a precise code."""
    if not is_well_formed(token):
        raise Unauthorized("The bearer token is malformed.", code="token_malformed")
    digest = hash_token(token)
    # A Core row, not an ORM load: this runs on every request. The user comes back detached,
    # as every caller (the request's ``g.user``, a page sign-in) reads only its columns.
    row = bind.execute(_BY_TOKEN, {"digest": digest}).first()
    user = User(**row._mapping) if row is not None else None
    # compare_digest guards the final equality even though the lookup was by index.
    if user is None or not hmac.compare_digest(user.token_hash, digest):
        raise Unauthorized("The bearer token is not known.", code="token_invalid")
    if user.revoked_at is not None:
        raise Unauthorized("The bearer token has been revoked.", code="token_revoked")
    return user


def ensure_admin(session: Session, name: str = "admin") -> IssuedUser | None:
    """Create the first admin if there is no active admin yet; return it with its token."""
    exists = session.scalar(
        sa.select(sa.func.count()).select_from(User).where(User.role == Role.ADMIN, User.revoked_at.is_(None))
    )
    if exists:
        return None
    return create_user(session, name=name, role=Role.ADMIN)

"""Sign-in sessions of the web pages, kept on the server.

The browser holds only a random session id, in Flask's signed, HttpOnly, SameSite=Strict
cookie; the database holds the id's SHA-256, whose user it belongs to and when it ends. The
API token typed at sign-in is checked once and then forgotten: it is never stored, never put
in the cookie and never shown again. Signing out deletes the row, so a copied cookie stops
working at once, and a revoked token ends every session opened with it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, Session, mapped_column

from chopay.db import Base, CreatedAt, intpk, utcnow
from chopay.users import User

SESSION_LIFETIME = dt.timedelta(hours=8)
"""A session ends this long after sign-in, whatever happens in between (a working day)."""

SID_BYTES = 32


class WebSession(Base):
    __tablename__ = "web_sessions"

    id: Mapped[intpk]
    sid_hash: Mapped[bytes] = mapped_column(sa.LargeBinary(32), unique=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[CreatedAt]
    expires_at: Mapped[dt.datetime] = mapped_column(index=True)


def _digest(sid: str) -> bytes:
    return hashlib.sha256(sid.encode("utf-8")).digest()


def open_session(session: Session, user: User) -> str:
    """Start a session for ``user``; return its id (shown once, to be put in the cookie)."""
    sid = secrets.token_urlsafe(SID_BYTES)
    now = utcnow()
    # Ended sessions are of no use to anyone: drop them as new ones start.
    session.execute(sa.delete(WebSession).where(WebSession.expires_at <= now))
    session.add(WebSession(sid_hash=_digest(sid), user_id=user.id, expires_at=now + SESSION_LIFETIME))
    session.flush()
    return sid


def find_user(session: Session, sid: str) -> User | None:
    """Return the active user of an unexpired session ``sid``, or None."""
    user = session.scalar(
        sa.select(User)
        .join(WebSession, WebSession.user_id == User.id)
        .where(WebSession.sid_hash == _digest(sid), WebSession.expires_at > utcnow())
    )
    if user is None or user.revoked_at is not None:
        return None
    return user


def close_session(session: Session, sid: str) -> None:
    """End the session ``sid`` (signing out twice is harmless)."""
    session.execute(sa.delete(WebSession).where(WebSession.sid_hash == _digest(sid)))
    session.flush()

"""Connectors: who may report payments, in which format, with which live secrets.

A connector is a name, a format (``chopay``, ``sepay`` or ``payos``), an optional BIN and one or
more live secrets. Several secrets are live at once so that a secret can rotate without a
moment where the sender's old or new secret is refused: ``chopay connectors rotate NAME`` adds
a new secret and lets the others expire after a grace period.

How a secret is kept depends on what verifying it needs:

* ``chopay`` and ``payos`` verify an HMAC, so the receiver must hold the secret itself: it is
  stored encrypted with the data keys (AES-GCM, :mod:`chopay.crypto`);
* ``sepay`` sends its API key as is (``Authorization: Apikey <key>``), so only the key's
  SHA-256 is stored, and the presented key is hashed before the constant-time comparison.

Connectors come from the database (the ``chopay connectors`` commands) and from the
``CHOPAY_BANK_CONNECTORS`` setting, whose syntax is::

    NAME=FORMAT[/BIN]:SECRET[,SECRET...]   entries separated by ';' or white space

for example ``bank-a=chopay:whsec_one,whsec_two; cho-han=sepay/970436:sk_live``. A name
declared in the setting wins over a database connector of the same name. The BIN tells which
bank the account numbers of a SePay (when its ``gateway`` is not in the bank directory) or
payOS connector belong to; chopay-format notifications carry their BIN.

Live secrets are cached per process for :data:`CACHE_SECONDS`: a rotation reaches every
process within that time; the process that rotated drops its cache at once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from flask import Flask, current_app
from sqlalchemy.orm import Session

from chopay.crypto import DataKeys
from chopay.db import utcnow
from chopay.errors import Conflict, NotFound, Unprocessable
from merchants.intake.models import CONNECTOR_SECRET, BankConnector, ConnectorSecret

FORMATS = ("chopay", "sepay", "payos")
NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")
NAME_PATTERN = NAME.pattern
BIN = re.compile(r"[0-9]{6}")
CACHE_SECONDS = 5.0
DEFAULT_GRACE = dt.timedelta(hours=24)
_SECRET = re.compile(r"[!-~]{8,200}")
_SEPARATORS = re.compile(r"[;\s]+")


@dataclass(frozen=True)
class Connector:
    """A connector as the intake verifies with it: its live secrets, or their hashes (SePay)."""

    name: str
    format: str
    bin: str | None
    secrets: tuple[str, ...]
    source: str  # "database" or "setting"

    @property
    def hashed(self) -> bool:
        """Tell whether ``secrets`` holds SHA-256 hashes of API keys rather than the keys."""
        return self.format == "sepay"


@dataclass(frozen=True)
class Issued:
    """A connector and the secret that was just created for it, shown only this once."""

    name: str
    format: str
    bin: str | None
    secret: str
    expiring: int = 0


def hash_key(key: str) -> str:
    """Return the stored form of a SePay API key."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_secret(fmt: str) -> str:
    """Return a fresh random secret in the shape the format's senders expect."""
    if fmt == "chopay":
        return "whsec_" + secrets.token_urlsafe(32)
    if fmt == "sepay":
        return "spk_" + secrets.token_urlsafe(32)
    return secrets.token_hex(32)  # a payOS checksum key is 64 hex digits


def hint(secret: str) -> str:
    """Return the first characters of a secret, to tell secrets apart in listings."""
    return secret[:10] + "..."


def parse_setting(text: str) -> dict[str, Connector]:
    """Parse ``CHOPAY_BANK_CONNECTORS``; raise ValueError naming the bad entry."""
    found: dict[str, Connector] = {}
    for entry in _SEPARATORS.split(text.strip()):
        if not entry:
            continue
        name, sep, rest = entry.partition("=")
        head, sep2, secret_list = rest.partition(":")
        fmt, _, bin_ = head.partition("/")
        if not sep or not sep2:
            raise ValueError(f"{entry.split(':')[0]!r} is not NAME=FORMAT[/BIN]:SECRET[,SECRET...]")
        check_name(name)
        if fmt not in FORMATS:
            raise ValueError(f"connector {name!r}: the format must be one of {', '.join(FORMATS)}")
        if bin_ and not BIN.fullmatch(bin_):
            raise ValueError(f"connector {name!r}: a BIN is six digits")
        keys = [s for s in secret_list.split(",") if s]
        if not keys or not all(_SECRET.fullmatch(s) for s in keys):
            raise ValueError(f"connector {name!r}: each secret is 8 to 200 printable characters")
        if name in found:
            raise ValueError(f"connector {name!r} is declared twice")
        stored = tuple(hash_key(k) for k in keys) if fmt == "sepay" else tuple(keys)
        found[name] = Connector(name, fmt, bin_ or None, stored, "setting")
    return found


def check_name(name: str) -> None:
    """Raise ValueError unless ``name`` is a connector name."""
    if not NAME.fullmatch(name):
        raise ValueError(
            f"connector name {name!r}: 1 to 40 of a-z, 0-9, '_', '-', starting with a letter or digit"
        )


def _secret_row(keys: DataKeys, connector_id: int, fmt: str, secret: str) -> ConnectorSecret:
    row = ConnectorSecret(connector_id=connector_id, hint=hint(secret))
    if fmt == "sepay":
        row.secret_sha256 = hash_key(secret)
    else:
        row.secret = keys.encrypt(secret, CONNECTOR_SECRET.context)
    return row


def add(
    session: Session,
    keys: DataKeys,
    *,
    name: str,
    fmt: str,
    bin_: str | None = None,
    declared: Sequence[str] = (),
    created_by: int | None = None,
) -> Issued:
    """Create a connector with one new secret; the secret is returned once and never shown again."""
    try:
        check_name(name)
    except ValueError as exc:
        raise Unprocessable(str(exc), code="connector_name_invalid") from None
    if fmt not in FORMATS:
        raise Unprocessable(
            f"The format must be one of {', '.join(FORMATS)}.", code="connector_format_unknown"
        )
    if bin_ is not None and not BIN.fullmatch(bin_):
        raise Unprocessable("A BIN is six digits.", code="connector_bin_invalid")
    if name in declared or session.scalar(sa.select(BankConnector.id).where(BankConnector.name == name)):
        raise Conflict(f"A connector named {name!r} already exists.", code="connector_exists")
    connector = BankConnector(name=name, format=fmt, bin=bin_, created_by=created_by)
    session.add(connector)
    session.flush()
    secret = new_secret(fmt)
    session.add(_secret_row(keys, connector.id, fmt, secret))
    session.flush()
    return Issued(name, fmt, bin_, secret)


def rotate(session: Session, keys: DataKeys, name: str, *, grace: dt.timedelta = DEFAULT_GRACE) -> Issued:
    """Add a new secret to ``name``; the live ones expire after ``grace`` (at once for zero)."""
    connector = session.scalar(sa.select(BankConnector).where(BankConnector.name == name).with_for_update())
    if connector is None:
        raise NotFound(f"No connector named {name!r} in the database.", code="connector_not_found")
    now = utcnow()
    until = now + grace
    live = session.scalars(
        sa.select(ConnectorSecret).where(
            ConnectorSecret.connector_id == connector.id,
            sa.or_(ConnectorSecret.expires_at.is_(None), ConnectorSecret.expires_at > until),
        )
    ).all()
    for row in live:
        row.expires_at = until
    secret = new_secret(connector.format)
    session.add(_secret_row(keys, connector.id, connector.format, secret))
    session.flush()
    forget(name)
    return Issued(name, connector.format, connector.bin, secret, expiring=len(live))


@dataclass(frozen=True)
class Listed:
    """A connector as ``chopay connectors list`` shows it: no secret, only hints."""

    name: str
    format: str
    bin: str | None
    source: str
    live: tuple[str, ...]
    expires: tuple[dt.datetime | None, ...]


def list_connectors(session: Session, declared: dict[str, Connector]) -> list[Listed]:
    """Return every connector, from the setting and the database, with its live secrets' hints."""
    now = utcnow()
    out = [
        Listed(c.name, c.format, c.bin, "setting", tuple("(setting)" for _ in c.secrets), ())
        for c in declared.values()
    ]
    for connector in session.scalars(sa.select(BankConnector).order_by(BankConnector.name)):
        if connector.name in declared:
            continue
        rows = session.scalars(
            sa.select(ConnectorSecret)
            .where(
                ConnectorSecret.connector_id == connector.id,
                sa.or_(ConnectorSecret.expires_at.is_(None), ConnectorSecret.expires_at > now),
            )
            .order_by(ConnectorSecret.id)
        ).all()
        out.append(
            Listed(
                connector.name,
                connector.format,
                connector.bin,
                "database",
                tuple(r.hint for r in rows),
                tuple(r.expires_at for r in rows),
            )
        )
    return sorted(out, key=lambda c: c.name)


def load(session: Session, keys: DataKeys, name: str) -> Connector | None:
    """Read a database connector and open its live secrets."""
    connector = session.scalar(sa.select(BankConnector).where(BankConnector.name == name))
    if connector is None:
        return None
    now = utcnow()
    rows = session.scalars(
        sa.select(ConnectorSecret)
        .where(
            ConnectorSecret.connector_id == connector.id,
            sa.or_(ConnectorSecret.expires_at.is_(None), ConnectorSecret.expires_at > now),
        )
        .order_by(ConnectorSecret.id.desc())
    ).all()
    values = tuple(
        r.secret_sha256
        if r.secret_sha256 is not None
        else keys.decrypt(r.secret or "", CONNECTOR_SECRET.context)
        for r in rows
    )
    return Connector(connector.name, connector.format, connector.bin, values, "database")


class _Cache:
    """Connectors read recently, per process, each for at most CACHE_SECONDS."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._found: dict[str, tuple[float, Connector | None]] = {}

    def get(self, name: str) -> tuple[bool, Connector | None]:
        with self._lock:
            hit = self._found.get(name)
        if hit is None or time.monotonic() - hit[0] > CACHE_SECONDS:
            return False, None
        return True, hit[1]

    def put(self, name: str, connector: Connector | None) -> None:
        with self._lock:
            if len(self._found) > 10_000:  # names come from URLs: keep the cache bounded
                self._found.clear()
            self._found[name] = (time.monotonic(), connector)

    def drop(self, name: str | None = None) -> None:
        with self._lock:
            if name is None:
                self._found.clear()
            else:
                self._found.pop(name, None)


_CACHE = _Cache()


def forget(name: str | None = None) -> None:
    """Drop cached connectors (one, or all) in this process."""
    _CACHE.drop(name)


def resolve(
    session: Session, keys: Callable[[], DataKeys], name: str, declared: dict[str, Connector]
) -> Connector | None:
    """Return the connector ``name`` with its live secrets: from the setting, else the database."""
    if name in declared:
        return declared[name]
    if not NAME.fullmatch(name):
        return None
    hit, connector = _CACHE.get(name)
    if not hit:
        connector = load(session, keys(), name)
        _CACHE.put(name, connector)
    return connector


def init_app(app: Flask, setting: str) -> None:
    """Parse ``CHOPAY_BANK_CONNECTORS`` once, at start-up: a bad entry stops the process."""
    try:
        app.extensions["chopay.connectors"] = parse_setting(setting)
    except ValueError as exc:
        raise ValueError(f"CHOPAY_BANK_CONNECTORS: {exc}") from None


def declared(app: Flask | None = None) -> dict[str, Connector]:
    """Return the connectors declared by the setting."""
    found: dict[str, Connector] = (app or current_app).extensions["chopay.connectors"]
    return found

"""Pure rules of merchants: limits, public ids, intent references, statuses and QR text.

Nothing here touches a database, Flask or a queue; services and schemas derive every limit
from this module, so each is defined once.

**Public ids.** A merchant is known outside the service by ``m_`` and ten characters of
:data:`PUBLIC_ALPHABET` (50 random bits), e.g. ``m_7k2m9qxa3b``. It never changes, is
printed on the stall's sticker as the QR reference label (62-05), and reveals nothing about
how many merchants exist. A payment intent's id is ``pi_`` and twelve such characters.

**Intent references.** ``CP`` and eight characters of :data:`REFERENCE_ALPHABET` (no 0, O,
1 or I: a buyer may have to type it), 40 random bits. It is the bill number (62-01) of the
dynamic QR and starts its purpose (62-08), so a bank's transfer description carries it and
the intake can find the intent again. :data:`REFERENCE_RE` finds one in such a description
once spaces are removed and letters upper-cased.

**Statuses.** A merchant is ``active``, ``suspended`` or ``closed`` (:data:`MERCHANT_TRANSITIONS`);
closing is final. An intent is ``open`` until it is settled (``paid``, ``underpaid`` or
``overpaid``), ``expired`` by the sweep or ``cancelled`` by its merchant; only an open intent
changes.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
import secrets

from qr.schemes import MAX_AMOUNT
from qr.text import fold, sanitize_purpose, to_qr_ascii

# ---------------------------------------------------------------------------------------------
# Limits

MAX_NAME = 120
QR_NAME_LIMIT = 25
"""EMVCo merchant name (59): at most 25 characters."""
QR_CITY_LIMIT = 15
"""EMVCo merchant city (60): at most 15 characters."""
STALL_LIMIT = 25
"""The stall goes to the store label (62-03): at most 25 characters."""
MAX_PLACE = 120
MAX_MARKET_CODE = 20
MAX_HOLDER = 120
MAX_MEMO = 200
MAX_REASON = 500
DEFAULT_MCC = "5499"
MIN_AMOUNT = 1
MAX_AMOUNT_DONG = MAX_AMOUNT
DEFAULT_EXPIRY = dt.timedelta(minutes=15)
MIN_EXPIRY_SECONDS = 60
MAX_EXPIRY_SECONDS = 7 * 24 * 3600

BIN = re.compile(r"[0-9]{6}")
ACCOUNT_NUMBER = re.compile(r"[0-9A-Za-z]{6,19}")
MCC = re.compile(r"[0-9]{4}")
MARKET_CODE = re.compile(rf"[A-Za-z0-9][A-Za-z0-9_-]{{0,{MAX_MARKET_CODE - 1}}}")

# ---------------------------------------------------------------------------------------------
# Ids and references

PUBLIC_ALPHABET = "23456789abcdefghjkmnpqrstuvwxyz"
PUBLIC_ID_LENGTH = 10
PUBLIC_ID_RE = re.compile(rf"m_[{PUBLIC_ALPHABET}]{{{PUBLIC_ID_LENGTH}}}")
INTENT_ID_LENGTH = 12
INTENT_ID_RE = re.compile(rf"pi_[{PUBLIC_ALPHABET}]{{{INTENT_ID_LENGTH}}}")

REFERENCE_PREFIX = "CP"
REFERENCE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
REFERENCE_BODY = 8
REFERENCE_LENGTH = len(REFERENCE_PREFIX) + REFERENCE_BODY
REFERENCE_RE = re.compile(rf"{REFERENCE_PREFIX}[{REFERENCE_ALPHABET}]{{{REFERENCE_BODY}}}")
"""An intent reference: ``CP`` and eight characters of :data:`REFERENCE_ALPHABET`."""


def _random(alphabet: str, length: int) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


def new_public_id() -> str:
    """Return a fresh merchant public id: ``m_`` and ten random characters."""
    return "m_" + _random(PUBLIC_ALPHABET, PUBLIC_ID_LENGTH)


def new_intent_id() -> str:
    """Return a fresh payment intent id: ``pi_`` and twelve random characters."""
    return "pi_" + _random(PUBLIC_ALPHABET, INTENT_ID_LENGTH)


def new_reference() -> str:
    """Return a fresh intent reference: ``CP`` and eight random characters, ten in all."""
    return REFERENCE_PREFIX + _random(REFERENCE_ALPHABET, REFERENCE_BODY)


def is_reference(value: str) -> bool:
    """Tell whether ``value`` is exactly an intent reference."""
    return REFERENCE_RE.fullmatch(value) is not None


# ---------------------------------------------------------------------------------------------
# Statuses


class MerchantStatus(enum.StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    CLOSED = "closed"


MERCHANT_TRANSITIONS: dict[MerchantStatus, frozenset[MerchantStatus]] = {
    MerchantStatus.ACTIVE: frozenset({MerchantStatus.SUSPENDED, MerchantStatus.CLOSED}),
    MerchantStatus.SUSPENDED: frozenset({MerchantStatus.ACTIVE, MerchantStatus.CLOSED}),
    MerchantStatus.CLOSED: frozenset(),
}


def merchant_transition_allowed(current: str, target: str) -> bool:
    """Tell whether a merchant may move from ``current`` to ``target``."""
    return MerchantStatus(target) in MERCHANT_TRANSITIONS[MerchantStatus(current)]


class IntentStatus(enum.StrEnum):
    OPEN = "open"
    PAID = "paid"
    UNDERPAID = "underpaid"
    OVERPAID = "overpaid"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


SETTLED_STATUSES = frozenset({IntentStatus.PAID, IntentStatus.UNDERPAID, IntentStatus.OVERPAID})


def settlement_status(expected: int, received: int) -> IntentStatus:
    """Return the status of an intent of ``expected`` dong once ``received`` dong came in."""
    if received == expected:
        return IntentStatus.PAID
    return IntentStatus.UNDERPAID if received < expected else IntentStatus.OVERPAID


# ---------------------------------------------------------------------------------------------
# Text for QR fields


def qr_name_of(display_name: str) -> str:
    """Derive the QR merchant name (ASCII, at most 25 characters) from a display name.

    Empty when nothing of the name survives conversion to ASCII (a name in another script):
    the caller then asks for a ``qr_name`` explicitly.
    """
    return to_qr_ascii(display_name, QR_NAME_LIMIT)


def qr_city_of(text: str) -> str:
    """Return ``text`` as a QR merchant city (ASCII, at most 15 characters)."""
    return to_qr_ascii(text, QR_CITY_LIMIT)


def intent_purpose(reference: str, memo: str | None) -> str:
    """Return the purpose (62-08) of an intent: its reference, then the sanitised memo, ≤ 25."""
    tail = sanitize_purpose(memo, limit=QR_NAME_LIMIT - len(reference) - 1) if memo else ""
    return f"{reference} {tail}" if tail else reference


def search_key(text: str) -> str:
    """Return the key names are searched by: no case, no diacritics, no spaces or punctuation."""
    return fold(text)

"""Tables of merchants: the registry, its status history and payment intents.

**One active merchant per destination.** A partial unique index over (``bin``,
``account_number``) ``WHERE status = 'active'``, which PostgreSQL and SQLite both enforce,
keeps two active merchants from sharing a bank account; a suspended or closed record keeps
its account, so a vendor who moves stalls can be registered again.

**Personal data.** The phone is stored as ciphertext made by ``chopay.crypto`` (declared with
``protected_column``, so ``chopay keys rotate-data`` re-encrypts it). The account number and
the holder's name are stored as text on purpose: a merchant's receiving account is printed
on the stall's sticker (it is the point of a static VietQR), and the intake looks it up by
value on every bank notification. Neither is shown by a public endpoint, and neither goes to
a log or a ledger leaf (the ledger carries the merchant's public id).

``name_key`` is the display name folded (no case, no diacritics, no spaces) for the search.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from chopay.crypto import protected_column
from chopay.db import Base, CreatedAt, Money, intpk, utcnow
from merchants import domain

PHONE = protected_column("merchants", "phone")

_FK = sa.BigInteger().with_variant(sa.Integer, "sqlite")
_PUBLIC_ID = sa.String(16)


def _in(column: str, values: type[domain.MerchantStatus] | type[domain.IntentStatus]) -> str:
    return f"{column} IN ({', '.join(repr(str(v)) for v in values)})"


class Merchant(Base):
    __tablename__ = "merchants"

    id: Mapped[intpk]
    public_id: Mapped[str] = mapped_column(_PUBLIC_ID, unique=True)
    display_name: Mapped[str] = mapped_column(sa.String(domain.MAX_NAME))
    name_key: Mapped[str] = mapped_column(sa.String(domain.MAX_NAME * 2), index=True)
    qr_name: Mapped[str] = mapped_column(sa.String(domain.QR_NAME_LIMIT))
    market_code: Mapped[str] = mapped_column(sa.String(domain.MAX_MARKET_CODE))
    market_name: Mapped[str] = mapped_column(sa.String(domain.MAX_PLACE))
    stall: Mapped[str] = mapped_column(sa.String(domain.STALL_LIMIT))
    ward: Mapped[str] = mapped_column(sa.String(domain.MAX_PLACE))
    province: Mapped[str] = mapped_column(sa.String(domain.MAX_PLACE))
    city: Mapped[str] = mapped_column(sa.String(domain.QR_CITY_LIMIT))
    phone: Mapped[str | None] = mapped_column(sa.Text)
    bin: Mapped[str] = mapped_column(sa.String(6))
    account_number: Mapped[str] = mapped_column(sa.String(19))
    account_holder: Mapped[str] = mapped_column(sa.String(domain.MAX_HOLDER))
    mcc: Mapped[str] = mapped_column(sa.String(4), default=domain.DEFAULT_MCC)
    status: Mapped[str] = mapped_column(sa.String(16), default=domain.MerchantStatus.ACTIVE.value)
    created_by: Mapped[int | None]
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    __table_args__ = (
        sa.CheckConstraint(_in("status", domain.MerchantStatus), name="status_known"),
        sa.Index(
            "uq_merchants_active_account",
            "bin",
            "account_number",
            unique=True,
            postgresql_where=sa.text("status = 'active'"),
            sqlite_where=sa.text("status = 'active'"),
        ),
        sa.Index("ix_merchants_bin_account", "bin", "account_number"),
        sa.Index("ix_merchants_market", "market_code", "id"),
    )


class MerchantStatusChange(Base):
    """One change of a merchant's status: from what to what, by whom, when and why."""

    __tablename__ = "merchant_status_changes"

    id: Mapped[intpk]
    merchant_id: Mapped[int] = mapped_column(_FK, sa.ForeignKey("merchants.id"), index=True)
    from_status: Mapped[str | None] = mapped_column(sa.String(16))
    to_status: Mapped[str] = mapped_column(sa.String(16))
    reason: Mapped[str | None] = mapped_column(sa.String(domain.MAX_REASON))
    changed_by: Mapped[int | None]
    changed_at: Mapped[CreatedAt]


class PaymentIntent(Base):
    """A dynamic QR for an exact amount, open until it is paid, expires or is cancelled."""

    __tablename__ = "payment_intents"

    id: Mapped[intpk]
    public_id: Mapped[str] = mapped_column(_PUBLIC_ID, unique=True)
    merchant_id: Mapped[int] = mapped_column(_FK, sa.ForeignKey("merchants.id"))
    reference: Mapped[str] = mapped_column(sa.String(domain.REFERENCE_LENGTH), unique=True)
    amount: Mapped[Money]
    memo: Mapped[str | None] = mapped_column(sa.String(domain.MAX_MEMO))
    payload: Mapped[str] = mapped_column(sa.String(512))
    status: Mapped[str] = mapped_column(sa.String(16), default=domain.IntentStatus.OPEN.value)
    expires_at: Mapped[dt.datetime]
    created_by: Mapped[int | None]
    created_at: Mapped[CreatedAt]
    settled_at: Mapped[dt.datetime | None]
    paid_amount: Mapped[int | None] = mapped_column(sa.BigInteger)

    __table_args__ = (
        sa.CheckConstraint(_in("status", domain.IntentStatus), name="status_known"),
        sa.CheckConstraint(f"amount > 0 AND amount <= {domain.MAX_AMOUNT_DONG}", name="amount_bounded"),
        sa.Index("ix_payment_intents_merchant", "merchant_id", "id"),
        # The sweep looks for open intents past their expiry; only open ones enter the index.
        sa.Index(
            "ix_payment_intents_open_expiry",
            "expires_at",
            postgresql_where=sa.text("status = 'open'"),
            sqlite_where=sa.text("status = 'open'"),
        ),
    )

"""Tables of disbursement: programs, the beneficiary registry, uploads, batches and items.

Personal data (national id, phone, bank account number) is stored only as ciphertext made by
``chopay.crypto`` and found through blind indexes. Each such column is declared with
``protected_column`` so that ``chopay keys rotate-data`` re-encrypts it. A payout item's
account number uses the same context as the registry's, so that validation copies the
registry's ciphertext into the item without opening it.

The **entitlement key** (program, beneficiary, period) is unique among the items that hold it
(``entitled``), by a partial unique index that PostgreSQL and SQLite both enforce. An item
holds it while pending, sending or paid; rejecting or cancelling a batch, or an item failing
for good, clears ``entitled`` and so frees the key for another batch. A CHECK keeps an item
that is cancelled or failed from holding it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from chopay.crypto import protected_column
from chopay.db import Base, CreatedAt, Money, intpk, utcnow
from disbursement import domain

NATIONAL_ID = protected_column("beneficiaries", "national_id")
PHONE = protected_column("beneficiaries", "phone")
ACCOUNT_CONTEXT = "bank_account_number"
ACCOUNT = protected_column("beneficiaries", "account_number", ACCOUNT_CONTEXT)
ITEM_ACCOUNT = protected_column("payout_items", "account_number", ACCOUNT_CONTEXT)
UPLOAD_DATA = protected_column("disbursement_upload_chunks", "data")
NATIONAL_ID_INDEX = "beneficiaries.national_id"
ACCOUNT_INDEX = ACCOUNT_CONTEXT
"""Blind-index contexts: a national id, and ``bin:account_number`` of a destination."""

_FK = sa.BigInteger().with_variant(sa.Integer, "sqlite")
Period = sa.String(7)


def _in(column: str, values: Any) -> str:
    return f"{column} IN ({', '.join(repr(str(v)) for v in values)})"


class Program(Base):
    __tablename__ = "programs"

    id: Mapped[intpk]
    code: Mapped[str] = mapped_column(sa.String(domain.MAX_PROGRAM_CODE), unique=True)
    name: Mapped[str] = mapped_column(sa.String(domain.MAX_NAME))
    legal_basis: Mapped[str] = mapped_column(sa.String(domain.MAX_LEGAL_BASIS))
    monthly_amount: Mapped[Money]
    cap: Mapped[Money]
    source_bin: Mapped[str] = mapped_column(sa.String(6))
    source_account: Mapped[str] = mapped_column(sa.String(19))
    status: Mapped[str] = mapped_column(sa.String(16), default=domain.ProgramStatus.ACTIVE.value)
    created_by: Mapped[int | None]
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    __table_args__ = (
        sa.CheckConstraint(_in("status", domain.ProgramStatus), name="status_known"),
        sa.CheckConstraint("monthly_amount > 0 AND cap >= monthly_amount", name="amounts"),
    )


class Funding(Base):
    __tablename__ = "program_fundings"

    id: Mapped[intpk]
    program_id: Mapped[int] = mapped_column(_FK, sa.ForeignKey("programs.id"))
    reference: Mapped[str] = mapped_column(sa.String(domain.MAX_FUNDING_REF))
    amount: Mapped[Money]
    transaction_id: Mapped[int] = mapped_column(_FK, sa.ForeignKey("ledger_transactions.id"))
    created_by: Mapped[int | None]
    created_at: Mapped[CreatedAt]

    __table_args__ = (sa.UniqueConstraint("program_id", "reference"),)


class Beneficiary(Base):
    __tablename__ = "beneficiaries"

    id: Mapped[intpk]
    national_id: Mapped[str] = mapped_column(sa.Text)
    national_id_index: Mapped[str] = mapped_column(sa.String(64), unique=True)
    full_name: Mapped[str] = mapped_column(sa.String(domain.MAX_NAME))
    name_key: Mapped[str] = mapped_column(sa.String(domain.MAX_NAME * 2), index=True)
    date_of_birth: Mapped[dt.date]
    gender: Mapped[str] = mapped_column(sa.String(8))
    ward: Mapped[str] = mapped_column(sa.String(domain.MAX_PLACE))
    province: Mapped[str] = mapped_column(sa.String(domain.MAX_PLACE))
    phone: Mapped[str | None] = mapped_column(sa.Text)
    bin: Mapped[str | None] = mapped_column(sa.String(6))
    account_number: Mapped[str | None] = mapped_column(sa.Text)
    account_index: Mapped[str | None] = mapped_column(sa.String(64))
    status: Mapped[str] = mapped_column(sa.String(16), default=domain.BeneficiaryStatus.ACTIVE.value)
    version: Mapped[int] = mapped_column(default=1)
    created_by: Mapped[int | None]
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        sa.CheckConstraint(_in("status", domain.BeneficiaryStatus), name="status_known"),
        sa.CheckConstraint(_in("gender", domain.Gender), name="gender_known"),
        sa.CheckConstraint("(bin IS NULL) = (account_number IS NULL)", name="destination_whole"),
    )


class BeneficiaryChange(Base):
    """One edit of a registry record: which fields changed, from what to what (masked)."""

    __tablename__ = "beneficiary_history"

    id: Mapped[intpk]
    beneficiary_id: Mapped[int] = mapped_column(_FK, sa.ForeignKey("beneficiaries.id"), index=True)
    version: Mapped[int]
    changes: Mapped[dict[str, Any]]
    source: Mapped[str] = mapped_column(sa.String(16))
    changed_by: Mapped[int | None]
    changed_at: Mapped[CreatedAt]


class Enrolment(Base):
    __tablename__ = "enrolments"

    id: Mapped[intpk]
    program_id: Mapped[int] = mapped_column(_FK, sa.ForeignKey("programs.id"))
    beneficiary_id: Mapped[int] = mapped_column(_FK, sa.ForeignKey("beneficiaries.id"))
    monthly_amount: Mapped[Money]
    enrolled_from: Mapped[str] = mapped_column(Period)
    enrolled_to: Mapped[str | None] = mapped_column(Period)
    created_by: Mapped[int | None]
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        sa.Index("ix_enrolments_beneficiary_program", "beneficiary_id", "program_id"),
        sa.Index("ix_enrolments_program", "program_id", "id"),
        sa.CheckConstraint("enrolled_to IS NULL OR enrolled_to >= enrolled_from", name="period_order"),
        sa.CheckConstraint("monthly_amount > 0", name="amount_positive"),
    )


class Upload(Base):
    """A file as uploaded, kept (encrypted, in chunks) only until its batch is validated."""

    __tablename__ = "disbursement_uploads"

    id: Mapped[intpk]
    format: Mapped[str] = mapped_column(sa.String(8))
    filename: Mapped[str | None] = mapped_column(sa.String(domain.MAX_FILENAME))
    size: Mapped[int]
    chunks: Mapped[int]
    created_by: Mapped[int | None]
    created_at: Mapped[CreatedAt]


class UploadChunk(Base):
    __tablename__ = "disbursement_upload_chunks"

    upload_id: Mapped[int] = mapped_column(
        _FK, sa.ForeignKey("disbursement_uploads.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(primary_key=True)
    data: Mapped[str] = mapped_column(sa.Text)


class Batch(Base):
    __tablename__ = "payout_batches"

    id: Mapped[intpk]
    program_id: Mapped[int] = mapped_column(_FK, sa.ForeignKey("programs.id"))
    period: Mapped[str] = mapped_column(Period)
    status: Mapped[str] = mapped_column(sa.String(32), default=domain.BatchStatus.VALIDATING.value)
    format: Mapped[str] = mapped_column(sa.String(8))
    filename: Mapped[str | None] = mapped_column(sa.String(domain.MAX_FILENAME))
    upload_id: Mapped[int | None] = mapped_column(
        _FK, sa.ForeignKey("disbursement_uploads.id", ondelete="SET NULL")
    )
    declared_count: Mapped[int]
    declared_total: Mapped[Money]
    file_count: Mapped[int | None]
    file_total: Mapped[int | None] = mapped_column(sa.BigInteger)
    rows_checked: Mapped[int] = mapped_column(default=0)
    rows_valid: Mapped[int] = mapped_column(default=0)
    rows_invalid: Mapped[int] = mapped_column(default=0)
    amount_valid: Mapped[Money] = mapped_column(default=0)
    warnings: Mapped[list[dict[str, Any]]] = mapped_column(sa.JSON, default=list)
    lease_until: Mapped[dt.datetime | None]
    lease_owner: Mapped[str | None] = mapped_column(sa.String(32))
    created_by: Mapped[int]
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    validated_at: Mapped[dt.datetime | None]
    approved_at: Mapped[dt.datetime | None]
    items_digest: Mapped[str | None] = mapped_column(sa.String(64))
    cancelled_at: Mapped[dt.datetime | None]
    cancelled_by: Mapped[int | None]
    cancel_reason: Mapped[str | None] = mapped_column(sa.String(domain.MAX_REASON))
    # Execution (disbursement.execution): when it ran, the checkpoint that sealed it, why it paused.
    started_at: Mapped[dt.datetime | None]
    finished_at: Mapped[dt.datetime | None]
    progress_at: Mapped[dt.datetime | None]
    tree_size: Mapped[int | None] = mapped_column(sa.BigInteger)
    alert: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    precheck: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)

    __table_args__ = (
        sa.CheckConstraint(_in("status", domain.BatchStatus), name="status_known"),
        sa.CheckConstraint("declared_count >= 0 AND declared_total >= 0", name="declared_bounds"),
        sa.Index("ix_payout_batches_status", "status"),
        # The target of the items' foreign key: an item's entitlement key matches its batch's.
        sa.UniqueConstraint("id", "program_id", "period"),
        sa.Index("ix_payout_batches_program_period", "program_id", "period"),
    )


class Approval(Base):
    __tablename__ = "batch_approvals"

    batch_id: Mapped[int] = mapped_column(_FK, sa.ForeignKey("payout_batches.id"), primary_key=True)
    user_id: Mapped[int] = mapped_column(_FK, sa.ForeignKey("users.id"), primary_key=True)
    exclude_invalid: Mapped[bool]
    rows_invalid: Mapped[int]
    created_at: Mapped[CreatedAt]


class BatchError(Base):
    """A bad row of a batch (``row_number`` as numbered in the file), or the file itself (null)."""

    __tablename__ = "batch_errors"

    id: Mapped[intpk]
    batch_id: Mapped[int] = mapped_column(_FK, sa.ForeignKey("payout_batches.id"))
    row_number: Mapped[int | None]
    column_name: Mapped[str | None] = mapped_column(sa.String(40))
    code: Mapped[str] = mapped_column(sa.String(64))
    message: Mapped[str] = mapped_column(sa.String(1000))
    amount: Mapped[int | None] = mapped_column(sa.BigInteger)
    beneficiary_id: Mapped[int | None] = mapped_column(_FK)

    __table_args__ = (
        sa.Index("ix_batch_errors_batch", "batch_id", "id"),
        sa.Index("ix_batch_errors_batch_beneficiary", "batch_id", "beneficiary_id"),
    )


class PayoutItem(Base):
    """One payment to one person: what the bank rail is asked to send, and how it went.

    Amount, destination and reference are fixed when the batch is approved. Sending (the next
    stage) moves ``status`` through pending -> sending -> paid | failed, counts ``attempts``,
    holds a ``lease_until`` while an attempt is in flight, and records the bank's transaction
    id, a ``reason_code`` (with the rail's own ``rail_code``) on failure and a ``receipt_code``
    when paid. A re-send after a fixable failure is a new item whose ``retry_of_id`` names the
    first.
    """

    __tablename__ = "payout_items"

    id: Mapped[intpk]
    batch_id: Mapped[int] = mapped_column(_FK)
    row_number: Mapped[int]
    program_id: Mapped[int] = mapped_column(_FK)
    beneficiary_id: Mapped[int] = mapped_column(_FK, sa.ForeignKey("beneficiaries.id"))
    period: Mapped[str] = mapped_column(Period)
    ward: Mapped[str] = mapped_column(sa.String(domain.MAX_PLACE))
    amount: Mapped[Money]
    bin: Mapped[str] = mapped_column(sa.String(6))
    account_number: Mapped[str] = mapped_column(sa.Text)
    account_index: Mapped[str] = mapped_column(sa.String(64))
    destination_source: Mapped[str] = mapped_column(sa.String(8))
    status: Mapped[str] = mapped_column(sa.String(16), default=domain.ItemStatus.PENDING.value)
    entitled: Mapped[bool] = mapped_column(default=True)
    reference: Mapped[str | None] = mapped_column(sa.String(domain.REFERENCE_LENGTH))
    attempts: Mapped[int] = mapped_column(default=0)
    lease_until: Mapped[dt.datetime | None]
    last_attempt_at: Mapped[dt.datetime | None]
    bank_txn_id: Mapped[str | None] = mapped_column(sa.String(100))
    reason_code: Mapped[str | None] = mapped_column(sa.String(64))
    rail_code: Mapped[str | None] = mapped_column(sa.String(64))
    receipt_code: Mapped[str | None] = mapped_column(sa.String(32))
    ledger_transaction_id: Mapped[int | None] = mapped_column(_FK, sa.ForeignKey("ledger_transactions.id"))
    retry_of_id: Mapped[int | None] = mapped_column(_FK, sa.ForeignKey("payout_items.id"))
    precheck_code: Mapped[str | None] = mapped_column(sa.String(32))
    chunk_ref: Mapped[str | None] = mapped_column(sa.String(domain.REFERENCE_LENGTH))
    paid_at: Mapped[dt.datetime | None]
    failed_at: Mapped[dt.datetime | None]
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        # One key for batch, program and period: the entitlement key's parts always match the
        # batch's, and COPY pays for one foreign-key check where two would cost twice as much.
        sa.ForeignKeyConstraint(
            ["batch_id", "program_id", "period"],
            ["payout_batches.id", "payout_batches.program_id", "payout_batches.period"],
        ),
        sa.Index(
            "uq_payout_items_entitlement",
            "program_id",
            "beneficiary_id",
            "period",
            unique=True,
            postgresql_where=sa.text("entitled"),
            sqlite_where=sa.text("entitled"),
        ),
        sa.Index("ix_payout_items_batch_status", "batch_id", "status", "id"),
        sa.Index("ix_payout_items_beneficiary", "beneficiary_id", "id"),
        # Partial indexes: a pending item, which validation writes by the million, enters none.
        sa.Index(
            "ix_payout_items_sending",
            "lease_until",
            postgresql_where=sa.text("status = 'sending'"),
            sqlite_where=sa.text("status = 'sending'"),
        ),
        sa.Index(
            "uq_payout_items_reference",
            "reference",
            unique=True,
            postgresql_where=sa.text("reference IS NOT NULL"),
            sqlite_where=sa.text("reference IS NOT NULL"),
        ),
        sa.Index(
            "uq_payout_items_receipt_code",
            "receipt_code",
            unique=True,
            postgresql_where=sa.text("receipt_code IS NOT NULL"),
            sqlite_where=sa.text("receipt_code IS NOT NULL"),
        ),
        sa.CheckConstraint(_in("status", domain.ItemStatus), name="status_known"),
        sa.CheckConstraint(
            f"NOT entitled OR {_in('status', domain.ENTITLED_ITEM_STATUSES)}", name="entitled_status"
        ),
        sa.CheckConstraint(f"amount > 0 AND amount <= {domain.MAX_AMOUNT_DONG}", name="amount_bounded"),
        sa.CheckConstraint("attempts >= 0", name="attempts_positive"),
    )

"""Request and response schemas of disbursement; every limit comes from ``disbursement.domain``."""

from __future__ import annotations

import re
from typing import Any, ClassVar

import marshmallow as ma

from chopay.db import MAX_ID
from chopay.pagination import PageArgs, page_schema
from disbursement import domain
from payments.ledger.schemas import InclusionOut

V = ma.validate
Amount: dict[str, Any] = {"strict": True, "validate": V.Range(min=1, max=domain.MAX_AMOUNT_DONG)}


def full(pattern: re.Pattern[str]) -> ma.validate.Regexp:
    """Return a validator (and an OpenAPI pattern) matching the whole value against ``pattern``."""
    return V.Regexp(f"^(?:{pattern.pattern})$")


def _period(value: str) -> None:
    try:
        domain.parse_period(value)
    except ValueError as exc:
        raise ma.ValidationError(str(exc)) from None


def period_field(**kw: Any) -> ma.fields.String:
    """Return a field holding a period ``YYYY-MM``."""
    metadata = {"pattern": f"^(?:{domain.PERIOD.pattern})$", "example": "2026-11", **kw.pop("metadata", {})}
    return ma.fields.String(validate=_period, metadata=metadata, **kw)


def text(limit: int, **kw: Any) -> ma.fields.String:
    """Return a field of non-empty text of at most ``limit`` characters."""
    return ma.fields.String(validate=V.Length(min=1, max=limit), **kw)


def ident(**kw: Any) -> ma.fields.Integer:
    """Return a field holding a row id (strict in JSON bodies; query strings are text)."""
    kw.setdefault("strict", True)
    return ma.fields.Integer(validate=V.Range(min=1, max=MAX_ID), **kw)


# ---------------------------------------------------------------------------------------------
# Programs


class ProgramPatch(ma.Schema):
    name = text(domain.MAX_NAME)
    legal_basis = text(domain.MAX_LEGAL_BASIS)
    monthly_amount = ma.fields.Integer(**Amount)
    cap = ma.fields.Integer(**Amount, metadata={"description": "Most one person may get for one period"})
    source_bin = ma.fields.String(validate=full(domain.BIN))
    source_account = ma.fields.String(validate=full(domain.ACCOUNT_NUMBER))
    status = ma.fields.String(validate=V.OneOf([s.value for s in domain.ProgramStatus]))


class ProgramIn(ProgramPatch):
    code = ma.fields.String(required=True, validate=full(domain.PROGRAM_CODE))
    name = text(domain.MAX_NAME, required=True)
    legal_basis = text(domain.MAX_LEGAL_BASIS, required=True)
    monthly_amount = ma.fields.Integer(required=True, **Amount)
    cap = ma.fields.Integer(required=True, **Amount)
    source_bin = ma.fields.String(required=True, validate=full(domain.BIN))
    source_account = ma.fields.String(required=True, validate=full(domain.ACCOUNT_NUMBER))


class ProgramOut(ma.Schema):
    id = ma.fields.Integer()
    code = ma.fields.String()
    name = ma.fields.String()
    legal_basis = ma.fields.String()
    monthly_amount = ma.fields.Integer()
    cap = ma.fields.Integer()
    source_bin = ma.fields.String()
    source_account = ma.fields.String()
    status = ma.fields.String()
    budget_balance = ma.fields.Integer(metadata={"description": "Balance of program:{CODE}:budget, in dong"})
    accounts = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.String())
    created_at = ma.fields.DateTime()
    updated_at = ma.fields.DateTime()


class ProgramArgs(PageArgs):
    status = ma.fields.String(validate=V.OneOf([s.value for s in domain.ProgramStatus]))


class FundingIn(ma.Schema):
    amount = ma.fields.Integer(required=True, **Amount)
    reference = ma.fields.String(
        required=True,
        validate=full(domain.FUNDING_REF),
        metadata={"description": "The funding's own reference (a budget decision, a transfer id)"},
    )


class FundingOut(ma.Schema):
    id = ma.fields.Integer()
    reference = ma.fields.String()
    amount = ma.fields.Integer()
    transaction = ma.fields.String(metadata={"description": "Ledger transaction public id"})
    created_at = ma.fields.DateTime()
    budget_balance = ma.fields.Integer()


# ---------------------------------------------------------------------------------------------
# Beneficiaries and enrolments

NATIONAL_ID: dict[str, Any] = {"validate": V.Length(min=1, max=32), "metadata": {"example": "001099012345"}}


class BeneficiaryPatch(ma.Schema):
    national_id = ma.fields.String(**NATIONAL_ID)
    full_name = text(domain.MAX_NAME)
    date_of_birth = ma.fields.Date()
    gender = ma.fields.String(validate=V.OneOf([g.value for g in domain.Gender]))
    ward = text(domain.MAX_PLACE)
    province = text(domain.MAX_PLACE)
    phone = ma.fields.String(allow_none=True, validate=V.Length(max=20))
    bin = ma.fields.String(allow_none=True, validate=full(domain.BIN))
    account_number = ma.fields.String(allow_none=True, validate=V.Length(min=1, max=19))
    status = ma.fields.String(validate=V.OneOf([s.value for s in domain.BeneficiaryStatus]))


class BeneficiaryIn(BeneficiaryPatch):
    national_id = ma.fields.String(required=True, **NATIONAL_ID)
    full_name = text(domain.MAX_NAME, required=True)
    date_of_birth = ma.fields.Date(required=True)
    gender = ma.fields.String(required=True, validate=V.OneOf([g.value for g in domain.Gender]))
    ward = text(domain.MAX_PLACE, required=True)
    province = text(domain.MAX_PLACE, required=True)


class BeneficiaryOut(ma.Schema):
    id = ma.fields.Integer()
    national_id = ma.fields.String(metadata={"description": "Masked: 0********345"})
    full_name = ma.fields.String()
    date_of_birth = ma.fields.Date()
    gender = ma.fields.String()
    ward = ma.fields.String()
    province = ma.fields.String()
    phone = ma.fields.String(allow_none=True, metadata={"description": "Masked"})
    bin = ma.fields.String(allow_none=True)
    account_number = ma.fields.String(allow_none=True, metadata={"description": "Masked"})
    status = ma.fields.String()
    version = ma.fields.Integer()
    created_at = ma.fields.DateTime()
    updated_at = ma.fields.DateTime()


class BeneficiaryArgs(PageArgs):
    name = ma.fields.String(
        validate=V.Length(min=1, max=domain.MAX_NAME),
        metadata={"description": "Part of the name; case and diacritics are ignored"},
    )
    status = ma.fields.String(validate=V.OneOf([s.value for s in domain.BeneficiaryStatus]))
    ward = ma.fields.String(validate=V.Length(min=1, max=domain.MAX_PLACE))
    province = ma.fields.String(validate=V.Length(min=1, max=domain.MAX_PLACE))


class LookupIn(ma.Schema):
    national_id = ma.fields.String(required=True, **NATIONAL_ID)


class ChangeOut(ma.Schema):
    id = ma.fields.Integer()
    version = ma.fields.Integer()
    changes = ma.fields.Dict(metadata={"description": "field -> [before, after]; personal values masked"})
    source = ma.fields.String()
    changed_by = ma.fields.Integer(allow_none=True)
    changed_at = ma.fields.DateTime()


class ImportProblem(ma.Schema):
    row = ma.fields.Integer(allow_none=True)
    column = ma.fields.String(allow_none=True)
    code = ma.fields.String()
    message = ma.fields.String()


class ImportReportOut(ma.Schema):
    rows = ma.fields.Integer()
    created = ma.fields.Integer()
    updated = ma.fields.Integer()
    unchanged = ma.fields.Integer()
    rejected = ma.fields.Integer()
    enrolled = ma.fields.Integer()
    errors = ma.fields.List(ma.fields.Nested(ImportProblem))
    errors_truncated = ma.fields.Boolean()
    warnings = ma.fields.List(ma.fields.Dict())


class EnrolmentIn(ma.Schema):
    national_id = ma.fields.String(**NATIONAL_ID)
    beneficiary_id = ident()
    monthly_amount = ma.fields.Integer(**Amount)
    enrolled_from = period_field(required=True)
    enrolled_to = period_field(allow_none=True)

    OPENAPI_RULES: ClassVar[dict[str, Any]] = {
        "oneOf": [
            {"required": ["national_id"], "not": {"required": ["beneficiary_id"]}},
            {"required": ["beneficiary_id"], "not": {"required": ["national_id"]}},
        ]
    }

    @ma.validates_schema
    def _one_person(self, data: dict[str, Any], **_: Any) -> None:
        if ("national_id" in data) == ("beneficiary_id" in data):
            raise ma.ValidationError("Give exactly one of national_id and beneficiary_id.", "beneficiary_id")


class EnrolmentEnd(ma.Schema):
    enrolled_to = period_field(required=True, metadata={"description": "The last period of the enrolment"})


class EnrolmentOut(ma.Schema):
    id = ma.fields.Integer()
    beneficiary_id = ma.fields.Integer()
    monthly_amount = ma.fields.Integer()
    enrolled_from = ma.fields.String()
    enrolled_to = ma.fields.String(allow_none=True)
    created_at = ma.fields.DateTime()


class EnrolmentArgs(PageArgs):
    beneficiary_id = ident(strict=False)
    active_in = period_field(metadata={"description": "Only enrolments covering this period"})


# ---------------------------------------------------------------------------------------------
# Batches


class BatchFields(ma.Schema):
    program = ma.fields.String(required=True, validate=full(domain.PROGRAM_CODE))
    period = period_field(required=True)
    declared_count = ma.fields.Integer(
        required=True,
        validate=V.Range(min=1, max=domain.MAX_ROWS),
        metadata={"description": "Data rows in the file"},
    )
    declared_total = ma.fields.Integer(
        required=True,
        validate=V.Range(min=1, max=domain.MAX_BATCH_TOTAL),
        metadata={"description": "Sum of the amounts of every data row, in dong"},
    )


class BatchForm(BatchFields):
    """The form fields of a multipart upload (the file goes in the part ``file``)."""


FILE: dict[str, Any] = {
    "required": True,
    "metadata": {"type": "string", "format": "binary", "description": "CSV (UTF-8) or XLSX"},
}


class BatchUpload(BatchForm):
    """A multipart batch upload, as documented: the form fields and the file."""

    file = ma.fields.Raw(**FILE)


class FileUpload(ma.Schema):
    """A multipart upload of one file."""

    file = ma.fields.Raw(**FILE)


class ItemIn(ma.Schema):
    national_id = ma.fields.String(required=True, validate=V.Length(max=domain.MAX_CELL))
    full_name = ma.fields.String(required=True, validate=V.Length(max=domain.MAX_CELL))
    amount = ma.fields.Integer(required=True, strict=True, validate=V.Range(min=-MAX_ID, max=MAX_ID))
    bin = ma.fields.String(validate=V.Length(max=domain.MAX_CELL))
    account_number = ma.fields.String(validate=V.Length(max=domain.MAX_CELL))


class BatchJson(BatchFields):
    declared_count = ma.fields.Integer(
        required=True, strict=True, validate=V.Range(min=1, max=domain.MAX_ROWS)
    )
    declared_total = ma.fields.Integer(
        required=True, strict=True, validate=V.Range(min=1, max=domain.MAX_BATCH_TOTAL)
    )
    items = ma.fields.List(
        ma.fields.Nested(ItemIn), required=True, validate=V.Length(min=1, max=domain.MAX_ROWS)
    )


class Notice(ma.Schema):
    code = ma.fields.String()
    message = ma.fields.String()


class ApprovalOut(ma.Schema):
    user_id = ma.fields.Integer()
    exclude_invalid = ma.fields.Boolean()
    rows_invalid = ma.fields.Integer()
    created_at = ma.fields.DateTime()


class Counted(ma.Schema):
    status = ma.fields.String()
    code = ma.fields.String()
    ward = ma.fields.String()
    count = ma.fields.Integer()
    rows = ma.fields.Integer()
    amount = ma.fields.Integer()


class ExecutionOut(ma.Schema):
    by_reason = ma.fields.List(
        ma.fields.Nested(Counted), metadata={"description": "Failed items per reason code"}
    )
    done = ma.fields.Integer(metadata={"description": "Items paid or failed"})
    remaining = ma.fields.Integer(metadata={"description": "Items pending or sending"})
    items_per_second = ma.fields.Float(allow_none=True)
    eta_seconds = ma.fields.Float(allow_none=True)
    started_at = ma.fields.DateTime(allow_none=True)
    finished_at = ma.fields.DateTime(allow_none=True)
    tree_size = ma.fields.Integer(
        allow_none=True, metadata={"description": "Size of the signed checkpoint that sealed the batch"}
    )
    alert = ma.fields.Dict(allow_none=True, metadata={"description": "Why the batch is paused"})


class ReportOut(ma.Schema):
    by_status = ma.fields.List(ma.fields.Nested(Counted))
    by_error = ma.fields.List(ma.fields.Nested(Counted))
    by_ward = ma.fields.List(ma.fields.Nested(Counted))
    execution = ma.fields.Nested(ExecutionOut)


class BatchOut(ma.Schema):
    id = ma.fields.Integer()
    program = ma.fields.String()
    period = ma.fields.String()
    status = ma.fields.String()
    format = ma.fields.String()
    filename = ma.fields.String(allow_none=True)
    declared_count = ma.fields.Integer()
    declared_total = ma.fields.Integer()
    file_count = ma.fields.Integer(allow_none=True)
    file_total = ma.fields.Integer(allow_none=True)
    rows_checked = ma.fields.Integer()
    rows_valid = ma.fields.Integer()
    rows_invalid = ma.fields.Integer()
    amount_valid = ma.fields.Integer()
    warnings = ma.fields.List(ma.fields.Nested(Notice))
    file_errors = ma.fields.List(ma.fields.Nested(Notice))
    approvals = ma.fields.List(ma.fields.Nested(ApprovalOut))
    approvals_required = ma.fields.Integer()
    items_digest = ma.fields.String(allow_none=True)
    created_by = ma.fields.Integer()
    created_at = ma.fields.DateTime()
    validated_at = ma.fields.DateTime(allow_none=True)
    approved_at = ma.fields.DateTime(allow_none=True)
    cancelled_at = ma.fields.DateTime(allow_none=True)
    cancel_reason = ma.fields.String(allow_none=True)
    precheck = ma.fields.Dict(allow_none=True, metadata={"description": "The account pre-check's progress"})
    report = ma.fields.Nested(ReportOut)


class BatchArgs(PageArgs):
    program = ma.fields.String(validate=full(domain.PROGRAM_CODE))
    period = period_field()
    status = ma.fields.String(validate=V.OneOf([s.value for s in domain.BatchStatus]))


class ApproveIn(ma.Schema):
    exclude_invalid = ma.fields.Boolean(
        required=True,
        metadata={
            "description": "true accepts that the invalid rows are left out; false refuses if there are any"
        },
    )


class RejectIn(ma.Schema):
    reason = text(domain.MAX_REASON, required=True)


class ItemOut(ma.Schema):
    id = ma.fields.Integer()
    batch_id = ma.fields.Integer()
    row = ma.fields.Integer()
    program = ma.fields.String()
    period = ma.fields.String()
    beneficiary_id = ma.fields.Integer()
    ward = ma.fields.String()
    amount = ma.fields.Integer()
    bin = ma.fields.String()
    account_number = ma.fields.String(metadata={"description": "Masked"})
    destination_source = ma.fields.String(metadata={"description": "registry or file"})
    reference = ma.fields.String(allow_none=True, metadata={"description": "Set at approval; never changes"})
    status = ma.fields.String()
    attempts = ma.fields.Integer()
    bank_txn_id = ma.fields.String(allow_none=True)
    reason_code = ma.fields.String(allow_none=True)
    receipt_code = ma.fields.String(allow_none=True)
    rail_code = ma.fields.String(allow_none=True, metadata={"description": "The rail's own code"})
    precheck_code = ma.fields.String(allow_none=True)
    paid_at = ma.fields.DateTime(allow_none=True)
    created_at = ma.fields.DateTime()


class ItemArgs(PageArgs):
    status = ma.fields.String(validate=V.OneOf([s.value for s in domain.ItemStatus]))


class ErrorOut(ma.Schema):
    row = ma.fields.Integer(attribute="row_number", allow_none=True)
    column = ma.fields.String(attribute="column_name", allow_none=True)
    code = ma.fields.String()
    message = ma.fields.String()


class ErrorArgs(PageArgs):
    code = ma.fields.String(
        validate=V.Regexp(r"^[a-z][a-z0-9_]{0,63}$"), metadata={"example": "name_mismatch"}
    )


ProgramPage = page_schema(ProgramOut, "ProgramPage")
FundingPage = page_schema(FundingOut, "FundingPage")
BeneficiaryPage = page_schema(BeneficiaryOut, "BeneficiaryPage")
ChangePage = page_schema(ChangeOut, "ChangePage")
EnrolmentPage = page_schema(EnrolmentOut, "EnrolmentPage")
BatchPage = page_schema(BatchOut, "BatchPage")
ItemPage = page_schema(ItemOut, "PayoutItemPage")
ErrorPage = page_schema(ErrorOut, "ErrorPage")


class CancelIn(ma.Schema):
    reason = text(domain.MAX_REASON, required=True)


class RetryOut(ma.Schema):
    retried = ma.fields.Integer(metadata={"description": "Failed items sent again, each as a new item"})
    amount = ma.fields.Integer()
    batch = ma.fields.Nested(BatchOut)


class ReceiptProgram(ma.Schema):
    code = ma.fields.String()
    name = ma.fields.String()


class ReceiptLedger(ma.Schema):
    transaction = ma.fields.String(metadata={"example": "TX-0000000042"})
    index = ma.fields.Integer(allow_none=True, metadata={"description": "Log index; null until sequenced"})
    proof = ma.fields.Nested(InclusionOut, allow_none=True)


class ReceiptCheckpoint(ma.Schema):
    size = ma.fields.Integer()
    note = ma.fields.String(metadata={"description": "The C2SP signed note"})
    created_at = ma.fields.DateTime()


class ReceiptOut(ma.Schema):
    receipt_code = ma.fields.String(metadata={"example": "ABCD-EFGH-JKLM"})
    program = ma.fields.Nested(ReceiptProgram)
    period = ma.fields.String()
    amount = ma.fields.Integer()
    currency = ma.fields.String()
    bin = ma.fields.String()
    account_number = ma.fields.String(metadata={"description": "Masked"})
    paid_at = ma.fields.DateTime()
    bank_txn_id = ma.fields.String(allow_none=True)
    reference = ma.fields.String()
    sealed = ma.fields.Boolean(metadata={"description": "The entry is in the latest signed checkpoint"})
    ledger = ma.fields.Nested(ReceiptLedger, allow_none=True)
    checkpoint = ma.fields.Nested(ReceiptCheckpoint, allow_none=True)

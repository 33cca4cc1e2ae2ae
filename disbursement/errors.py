"""Errors of disbursement.

Exception tree::

    DisbursementError (chopay.errors.ChopayError)
    ├── InvalidInput             422  a field breaks a rule; ``errors`` maps fields to problems
    │                                 (national_id_*, phone_*, account_number_*, period_invalid,
    │                                 amount_*, bin_unknown, bank_not_receiving, ...)
    ├── FileRejected             422  the uploaded file cannot be read as a whole: file_empty |
    │                                 file_encoding | file_format | file_too_large | header_missing |
    │                                 column_missing | column_unknown | column_duplicate |
    │                                 xlsx_unreadable | xlsx_too_large | xlsx_no_sheet |
    │                                 too_many_rows | row_unreadable
    ├── ProgramNotFound          404  program_not_found
    ├── ProgramExists            409  program_exists
    ├── ProgramNotActive         422  program_not_active
    ├── BeneficiaryNotFound      404  beneficiary_not_found
    ├── BeneficiaryExists        409  beneficiary_exists: that national id is registered
    ├── EnrolmentNotFound        404  enrolment_not_found
    ├── EnrolmentOverlap         409  enrolment_overlaps: the beneficiary is enrolled then already
    ├── FundingConflict          409  funding_reference_reused: same reference, other amount
    ├── BatchNotFound            404  batch_not_found
    ├── BatchStateConflict       409  batch_not_ready | batch_already_approved | illegal_transition |
    │                                 batch_state_invalid (pause, resume, cancel, retry-failed) |
    │                                 nothing_to_retry
    ├── PrecheckUnsupported      409  precheck_unsupported: the payout rail offers no holder lookup
    ├── ReceiptNotFound          404  receipt_not_found
    ├── ApprovalRefused          403  approver_is_creator (maker-checker)
    ├── ApprovalConflict         409  already_approved_by_you | invalid_rows_not_excluded |
    │                                 budget_insufficient
    └── UnsupportedUpload        415  upload_media_type
"""

from __future__ import annotations

from chopay.errors import ChopayError, Conflict, Forbidden, NotFound, Unprocessable, UnsupportedMediaType


class DisbursementError(ChopayError):
    """Base class of disbursement errors."""


class InvalidInput(DisbursementError, Unprocessable):
    code = "validation_failed"


class FileRejected(DisbursementError, Unprocessable):
    code = "file_rejected"


class ProgramNotFound(DisbursementError, NotFound):
    code = "program_not_found"


class ProgramExists(DisbursementError, Conflict):
    code = "program_exists"


class ProgramNotActive(DisbursementError, Unprocessable):
    code = "program_not_active"


class BeneficiaryNotFound(DisbursementError, NotFound):
    code = "beneficiary_not_found"


class BeneficiaryExists(DisbursementError, Conflict):
    code = "beneficiary_exists"


class EnrolmentNotFound(DisbursementError, NotFound):
    code = "enrolment_not_found"


class EnrolmentOverlap(DisbursementError, Conflict):
    code = "enrolment_overlaps"


class FundingConflict(DisbursementError, Conflict):
    code = "funding_reference_reused"


class BatchNotFound(DisbursementError, NotFound):
    code = "batch_not_found"


class BatchStateConflict(DisbursementError, Conflict):
    code = "illegal_transition"


class PrecheckUnsupported(DisbursementError, Conflict):
    code = "precheck_unsupported"


class ReceiptNotFound(DisbursementError, NotFound):
    code = "receipt_not_found"


class ApprovalRefused(DisbursementError, Forbidden):
    code = "approver_is_creator"


class ApprovalConflict(DisbursementError, Conflict):
    code = "approval_conflict"


class UnsupportedUpload(DisbursementError, UnsupportedMediaType):
    code = "upload_media_type"

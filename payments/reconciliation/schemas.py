"""marshmallow schemas of the reconciliation API; every limit comes from the domain."""

from __future__ import annotations

import marshmallow as ma
from flask_smorest.fields import Upload

from chopay.pagination import PageArgs
from payments.ledger import domain as ledger_domain
from payments.ledger.schemas import ACCOUNT_CODE, NO_CONTROL, HexBytes, TransactionOut
from payments.reconciliation.domain import Category
from payments.reconciliation.services import MAX_NOTE, MAX_WINDOW_DAYS
from payments.reconciliation.statements import PRESETS, StatementFormat


class UploadForm(ma.Schema):
    """The form fields of a statement upload."""

    account = ma.fields.String(
        required=True, validate=ACCOUNT_CODE, metadata={"description": "Ledger account to reconcile against"}
    )
    format = ma.fields.String(
        load_default=None,
        validate=ma.validate.OneOf([f.value for f in StatementFormat]),
        metadata={"description": "Statement format (default: recognised from the file)"},
    )
    preset = ma.fields.String(
        load_default="bank_simulator",
        validate=ma.validate.OneOf(sorted(PRESETS)),
        metadata={"description": "CSV column mapping"},
    )
    period_from = ma.fields.Date(
        data_key="from",
        load_default=None,
        metadata={"description": "CSV only: the statement's first day (default: its first line's)"},
    )
    period_to = ma.fields.Date(
        data_key="to",
        load_default=None,
        metadata={"description": "CSV only: the statement's last day (default: its last line's)"},
    )
    date_window_days = ma.fields.Integer(
        load_default=None,
        validate=ma.validate.Range(min=0, max=MAX_WINDOW_DAYS),
        metadata={"description": "Tolerant rule: days between a line's value date and a ledger item's"},
    )
    fuzzy_threshold = ma.fields.Integer(
        load_default=None,
        validate=ma.validate.Range(min=0, max=100),
        metadata={"description": "Tolerant rule: lowest reference similarity (0..100) for a suggestion"},
    )


class UploadFile(ma.Schema):
    statement = Upload(required=True, metadata={"description": "The statement file (CSV, camt.053, MT940)"})


class StatementSummaryOut(ma.Schema):
    format = ma.fields.String()
    account = ma.fields.String(allow_none=True, metadata={"description": "The bank's account id, masked"})
    period_from = ma.fields.Date()
    period_to = ma.fields.Date()
    opening_balance = ma.fields.Integer()
    closing_balance = ma.fields.Integer()
    lines = ma.fields.Integer()
    fingerprint = ma.fields.String()
    file_sha256 = ma.fields.String()
    file_bytes = ma.fields.Integer()


class CheckpointPin(ma.Schema):
    size = ma.fields.Integer(allow_none=True)
    root = HexBytes(allow_none=True)
    note = ma.fields.String(allow_none=True, metadata={"description": "The signed checkpoint (C2SP note)"})


class BalanceCheckOut(ma.Schema):
    statement_opening = ma.fields.Integer()
    statement_closing = ma.fields.Integer()
    ledger_opening = ma.fields.Integer(allow_none=True)
    ledger_closing = ma.fields.Integer(allow_none=True)
    ledger_at_checkpoint = ma.fields.Integer(allow_none=True)
    difference = ma.fields.Integer(
        allow_none=True, metadata={"description": "Statement minus ledger closing"}
    )
    explained = ma.fields.Integer(allow_none=True)
    unexplained = ma.fields.Integer(allow_none=True)
    fully_explained = ma.fields.Boolean(allow_none=True)


class TotalOut(ma.Schema):
    count = ma.fields.Integer()
    bank_amount = ma.fields.Integer()
    ledger_amount = ma.fields.Integer()
    difference = ma.fields.Integer()


class SealOut(ma.Schema):
    report_digest = ma.fields.String(allow_none=True)
    attestation = ma.fields.String(allow_none=True, metadata={"description": "The sealing transaction"})
    log_index = ma.fields.Integer(allow_none=True)


class ReconciliationErrorOut(ma.Schema):
    code = ma.fields.String()
    detail = ma.fields.String()


class ReconciliationOut(ma.Schema):
    id = ma.fields.Integer()
    public_id = ma.fields.String()
    account = ma.fields.String()
    status = ma.fields.String()
    phase = ma.fields.String()
    progress = ma.fields.Integer(metadata={"description": "Percent done"})
    error = ma.fields.Nested(ReconciliationErrorOut, allow_none=True)
    statement = ma.fields.Nested(StatementSummaryOut)
    config = ma.fields.Dict()
    checkpoint = ma.fields.Nested(CheckpointPin)
    balance = ma.fields.Nested(BalanceCheckOut)
    totals = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Nested(TotalOut))
    seal = ma.fields.Nested(SealOut)
    items = ma.fields.Integer(allow_none=True)
    created_at = ma.fields.DateTime()
    started_at = ma.fields.DateTime(allow_none=True)
    finished_at = ma.fields.DateTime(allow_none=True)


class ReconciliationPage(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(ReconciliationOut))
    next_cursor = ma.fields.String(allow_none=True)


class ItemArgs(PageArgs):
    category = ma.fields.String(load_default=None, validate=ma.validate.OneOf([c.value for c in Category]))


class LineOut(ma.Schema):
    line_id = ma.fields.String()
    booking_date = ma.fields.String()
    value_date = ma.fields.String()
    amount = ma.fields.Integer()
    reference = ma.fields.String()
    description = ma.fields.String()
    source = ma.fields.String(metadata={"description": "Where the line is in the file"})
    reversal = ma.fields.Boolean()


class DecisionOut(ma.Schema):
    action = ma.fields.String()
    note = ma.fields.String(allow_none=True)
    reversal = ma.fields.String(allow_none=True)
    decided_by = ma.fields.Integer()
    created_at = ma.fields.DateTime()


class ReconciliationItemOut(ma.Schema):
    position = ma.fields.Integer()
    category = ma.fields.String()
    rule = ma.fields.String(allow_none=True)
    line = ma.fields.Nested(LineOut, allow_none=True)
    transactions = ma.fields.List(ma.fields.String())
    ledger_amount = ma.fields.Integer(allow_none=True)
    ledger_date = ma.fields.String(allow_none=True)
    ledger_reference = ma.fields.String(allow_none=True)
    related = ma.fields.String(allow_none=True)
    score = ma.fields.Integer(allow_none=True)
    difference = ma.fields.Integer()
    decision = ma.fields.Nested(DecisionOut, allow_none=True)


class ReconciliationItemPage(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(ReconciliationItemOut))
    next_cursor = ma.fields.String(allow_none=True)


class NoteIn(ma.Schema):
    note = ma.fields.String(load_default=None, validate=[ma.validate.Length(max=MAX_NOTE), NO_CONTROL])


class ReverseIn(ma.Schema):
    reason = ma.fields.String(
        required=True, validate=[ma.validate.Length(min=1, max=ledger_domain.MAX_REASON), NO_CONTROL]
    )


class ReverseOut(ma.Schema):
    item = ma.fields.Nested(ReconciliationItemOut)
    reversal = ma.fields.Nested(TransactionOut)


class VerificationOut(ma.Schema):
    ok = ma.fields.Boolean()
    problems = ma.fields.List(ma.fields.String())
    report_digest = ma.fields.String(allow_none=True)
    recomputed_digest = ma.fields.String()
    attestation = ma.fields.Dict()
    pinned_checkpoint = ma.fields.Dict()

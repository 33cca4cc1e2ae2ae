"""Marshmallow schemas of the intake API; limits come from the domain modules."""

from __future__ import annotations

from typing import Any

import marshmallow as ma

from chopay.pagination import PageArgs, page_schema
from merchants.domain import PUBLIC_ID_RE, REFERENCE_RE
from merchants.intake import connectors
from payments.ledger.domain import public_id
from payments.rails.webhooks import MAX_AMOUNT

STATUSES = ("recorded", "unassigned", "ignored")


class PaymentOut(ma.Schema):
    id = ma.fields.Integer(metadata={"description": "The payment's id; also its event id on the live stream"})
    merchant = ma.fields.String()
    amount = ma.fields.Integer(validate=ma.validate.Range(min=1, max=MAX_AMOUNT))
    reference = ma.fields.String(allow_none=True, metadata={"description": "The matched intent's reference"})
    kind = ma.fields.String(
        validate=ma.validate.OneOf(["intent", "static", "assigned"]),
        metadata={"description": "intent (by reference), static (by account) or assigned (by an officer)"},
    )
    flag = ma.fields.String(allow_none=True, validate=ma.validate.OneOf(["underpaid", "overpaid"]))
    connector = ma.fields.String()
    bank_txn_id = ma.fields.String()
    occurred_at = ma.fields.AwareDateTime()
    recorded_at = ma.fields.AwareDateTime()
    ledger_transaction = ma.fields.String(metadata={"description": "The ledger transaction's public id"})


def payment_view(payment: Any, merchant_public_id: str) -> dict[str, Any]:
    """Return a payment as PaymentOut serialises it."""
    return {
        "id": payment.id,
        "merchant": merchant_public_id,
        "amount": payment.amount,
        "reference": payment.reference,
        "kind": payment.kind,
        "flag": payment.flag,
        "connector": payment.connector,
        "bank_txn_id": payment.bank_txn_id,
        "occurred_at": payment.occurred_at,
        "recorded_at": payment.recorded_at,
        "ledger_transaction": public_id(payment.ledger_tx_id),
    }


class IntakeOut(ma.Schema):
    success = ma.fields.Boolean(metadata={"description": "Always true: what SePay waits for"})
    status = ma.fields.String(validate=ma.validate.OneOf(STATUSES))
    duplicate = ma.fields.Boolean(metadata={"description": "A redelivery of a notification already recorded"})
    notification = ma.fields.Integer()
    payment = ma.fields.Nested(PaymentOut, allow_none=True)


class NotificationOut(ma.Schema):
    id = ma.fields.Integer()
    connector = ma.fields.String()
    format = ma.fields.String(validate=ma.validate.OneOf(connectors.FORMATS))
    status = ma.fields.String(validate=ma.validate.OneOf(STATUSES))
    direction = ma.fields.String(validate=ma.validate.OneOf(["in", "out"]))
    bank_txn_id = ma.fields.String()
    bin = ma.fields.String(allow_none=True)
    account_number = ma.fields.String(metadata={"description": "Masked: only the last 4 characters"})
    amount = ma.fields.Integer()
    description = ma.fields.String()
    code = ma.fields.String(allow_none=True)
    sender_status = ma.fields.String(
        allow_none=True,
        metadata={"description": "Why an ignored notification is no payment, as its sender said (payOS)"},
    )
    occurred_at = ma.fields.AwareDateTime()
    received_at = ma.fields.AwareDateTime()
    assigned_at = ma.fields.AwareDateTime(allow_none=True)
    payment = ma.fields.Nested(PaymentOut, allow_none=True)


NotificationPage = page_schema(NotificationOut, "BankNotificationPage")


class NotificationArgs(PageArgs):
    status = ma.fields.String(load_default=None, validate=ma.validate.OneOf(STATUSES))


class ConflictOut(ma.Schema):
    id = ma.fields.Integer()
    notification = ma.fields.Integer()
    content_sha256 = ma.fields.String()
    received_at = ma.fields.AwareDateTime()


ConflictPage = page_schema(ConflictOut, "BankNotificationConflictPage")


class AssignIn(ma.Schema):
    merchant = ma.fields.String(
        required=True,
        validate=ma.validate.Regexp(f"^{PUBLIC_ID_RE.pattern}$"),
        metadata={"example": "m_7k2m9qxa3b"},
    )
    reference = ma.fields.String(
        load_default=None,
        validate=ma.validate.Regexp(f"^{REFERENCE_RE.pattern}$"),
        metadata={"description": "An open intent of that merchant to settle with this payment"},
    )


class PaymentArgs(PageArgs):
    from_ = ma.fields.Date(data_key="from", load_default=None, metadata={"description": "First Vietnam day"})
    to = ma.fields.Date(load_default=None, metadata={"description": "Last Vietnam day (inclusive)"})


PaymentPage = page_schema(PaymentOut, "MerchantPaymentPage")


class StatementArgs(ma.Schema):
    date = ma.fields.Date(required=True, metadata={"description": "A Vietnam day (UTC+7), YYYY-MM-DD"})


class StatementOut(ma.Schema):
    merchant = ma.fields.String()
    date = ma.fields.Date()
    count = ma.fields.Integer()
    total = ma.fields.Integer()
    first = ma.fields.Nested(PaymentOut, allow_none=True)
    last = ma.fields.Nested(PaymentOut, allow_none=True)
    payments = ma.fields.List(ma.fields.Nested(PaymentOut))


class FiguresArgs(ma.Schema):
    from_ = ma.fields.Date(data_key="from", required=True)
    to = ma.fields.Date(required=True)


class DayOut(ma.Schema):
    date = ma.fields.Date()
    count = ma.fields.Integer()
    value = ma.fields.Integer()


class FiguresOut(ma.Schema):
    market_code = ma.fields.String()
    from_ = ma.fields.Date(data_key="from")
    to = ma.fields.Date()
    registered_vendors = ma.fields.Integer()
    active_vendors = ma.fields.Integer()
    vendors_paid_7d = ma.fields.Integer()
    vendors_paid_30d = ma.fields.Integer()
    payment_count = ma.fields.Integer()
    payment_value = ma.fields.Integer()
    days = ma.fields.List(ma.fields.Nested(DayOut))
    qr_acceptance_share = ma.fields.Float(metadata={"description": "Active vendors paid by QR in the period"})

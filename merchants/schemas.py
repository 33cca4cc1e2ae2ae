"""Request and response schemas of merchants; every limit comes from ``merchants.domain``.

The schemas state what JSON Schema can (lengths, patterns, ranges), so that the OpenAPI
document is exact; the rules it cannot state (a BIN that is in the bank directory and
receives transfers, a display name that can be written in ASCII, one active merchant per
account) are the services', answered with their own codes.
"""

from __future__ import annotations

from typing import Any

import marshmallow as ma

from chopay.pagination import PageArgs, page_schema
from disbursement.schemas import FileUpload, ImportProblem, full, text
from merchants import domain

V = ma.validate
ASCII = r"^[ -~]*[!-~][ -~]*$"
"""Printable ASCII with at least one visible character."""

__all__ = ["FileUpload"]


def ascii_text(limit: int, what: str, **kw: Any) -> ma.fields.String:
    """Return a field of printable ASCII, 1 to ``limit`` characters (it goes into the QR code)."""
    return ma.fields.String(
        validate=[
            V.Length(min=1, max=limit),
            V.Regexp(ASCII, error=f"{what} goes into the QR code: printable ASCII only (no diacritics)."),
        ],
        **kw,
    )


class MerchantPatch(ma.Schema):
    display_name = text(domain.MAX_NAME, metadata={"example": "Sạp rau Bà Thử"})
    qr_name = ascii_text(
        domain.QR_NAME_LIMIT,
        "qr_name",
        metadata={"description": "Name in the QR (tag 59); derived from display_name when not given"},
    )
    market_code = ma.fields.String(validate=full(domain.MARKET_CODE), metadata={"example": "CHO-HAN"})
    market_name = text(domain.MAX_PLACE)
    stall = ascii_text(domain.STALL_LIMIT, "stall", metadata={"description": "Store label in the QR (62-03)"})
    ward = text(domain.MAX_PLACE)
    province = text(domain.MAX_PLACE)
    city = ascii_text(
        domain.QR_CITY_LIMIT,
        "city",
        metadata={"description": "City in the QR (tag 60); derived from province when not given"},
    )
    phone = ma.fields.String(allow_none=True, validate=V.Length(max=20))
    bin = ma.fields.String(validate=full(domain.BIN), metadata={"example": "970436"})
    account_number = ma.fields.String(validate=full(domain.ACCOUNT_NUMBER))
    account_holder = text(domain.MAX_HOLDER)
    mcc = ma.fields.String(validate=full(domain.MCC), metadata={"example": domain.DEFAULT_MCC})


class MerchantIn(MerchantPatch):
    display_name = text(domain.MAX_NAME, required=True, metadata={"example": "Sạp rau Bà Thử"})
    market_code = ma.fields.String(required=True, validate=full(domain.MARKET_CODE))
    market_name = text(domain.MAX_PLACE, required=True)
    stall = ascii_text(domain.STALL_LIMIT, "stall", required=True)
    ward = text(domain.MAX_PLACE, required=True)
    province = text(domain.MAX_PLACE, required=True)
    bin = ma.fields.String(required=True, validate=full(domain.BIN), metadata={"example": "970436"})
    account_number = ma.fields.String(required=True, validate=full(domain.ACCOUNT_NUMBER))
    account_holder = text(domain.MAX_HOLDER, required=True)


class MerchantOut(ma.Schema):
    id = ma.fields.String(metadata={"description": "Public id, m_ and ten characters"})
    number = ma.fields.Integer(
        metadata={"description": "Internal number, to bind merchant users (chopay users create --merchant N)"}
    )
    display_name = ma.fields.String()
    qr_name = ma.fields.String()
    market_code = ma.fields.String()
    market_name = ma.fields.String()
    stall = ma.fields.String()
    ward = ma.fields.String()
    province = ma.fields.String()
    city = ma.fields.String()
    phone = ma.fields.String(allow_none=True, metadata={"description": "Masked"})
    bin = ma.fields.String()
    account_number = ma.fields.String()
    account_holder = ma.fields.String()
    mcc = ma.fields.String()
    status = ma.fields.String()
    created_at = ma.fields.DateTime()
    updated_at = ma.fields.DateTime()


MerchantPage = page_schema(MerchantOut, "MerchantPage")


class MerchantArgs(PageArgs):
    market = ma.fields.String(validate=full(domain.MARKET_CODE), metadata={"description": "Market code"})
    ward = ma.fields.String(validate=V.Length(min=1, max=domain.MAX_PLACE))
    status = ma.fields.String(validate=V.OneOf([s.value for s in domain.MerchantStatus]))
    q = ma.fields.String(
        validate=V.Length(min=1, max=domain.MAX_NAME),
        metadata={"description": "Part of the display name; case and diacritics are ignored"},
    )


class StatusIn(ma.Schema):
    status = ma.fields.String(required=True, validate=V.OneOf([s.value for s in domain.MerchantStatus]))
    reason = ma.fields.String(validate=V.Length(max=domain.MAX_REASON), allow_none=True)


class StatusChangeOut(ma.Schema):
    id = ma.fields.Integer()
    from_status = ma.fields.String(allow_none=True)
    to_status = ma.fields.String()
    reason = ma.fields.String(allow_none=True)
    changed_by = ma.fields.Integer(allow_none=True)
    changed_at = ma.fields.DateTime()


StatusChangePage = page_schema(StatusChangeOut, "MerchantStatusChangePage")


class MerchantImportOut(ma.Schema):
    rows = ma.fields.Integer()
    created = ma.fields.Integer()
    existing = ma.fields.Integer(
        metadata={"description": "Rows already registered with the same fields (a second upload)"}
    )
    rejected = ma.fields.Integer()
    merchants = ma.fields.List(
        ma.fields.Dict(), metadata={"description": "row, id and outcome of each good row"}
    )
    errors = ma.fields.List(ma.fields.Nested(ImportProblem))
    errors_truncated = ma.fields.Boolean()
    warnings = ma.fields.List(ma.fields.Dict())


class QRArgs(ma.Schema):
    format = ma.fields.String(load_default="png", validate=V.OneOf(["png", "svg", "txt"]))
    size = ma.fields.Integer(
        load_default=8,
        validate=V.Range(min=1, max=40),
        metadata={"description": "Pixels per module (PNG) or user units per module (SVG)"},
    )


class ConditionalHeaders(ma.Schema):
    if_none_match = ma.fields.String(
        data_key="If-None-Match",
        validate=V.Length(max=1000),
        metadata={"description": "The ETag of the image held: answered 304 when it is still current"},
    )


# ---------------------------------------------------------------------------------------------
# Payment intents


class IntentIn(ma.Schema):
    amount = ma.fields.Integer(
        required=True,
        strict=True,
        validate=V.Range(
            min=domain.MIN_AMOUNT,
            max=domain.MAX_AMOUNT_DONG,
            error=f"The amount is 1 to {domain.MAX_AMOUNT_DONG:,} dong (at most 13 digits).",
        ),
    )
    memo = ma.fields.String(validate=V.Length(max=domain.MAX_MEMO), allow_none=True)
    expires_in = ma.fields.Integer(
        strict=True,
        validate=V.Range(
            min=domain.MIN_EXPIRY_SECONDS,
            max=domain.MAX_EXPIRY_SECONDS,
            error=(
                f"expires_in is {domain.MIN_EXPIRY_SECONDS} to {domain.MAX_EXPIRY_SECONDS} seconds "
                "from now: an expiry in the past is refused."
            ),
        ),
        metadata={"description": "Seconds until the intent expires; 900 (15 minutes) by default"},
    )
    expires_at = ma.fields.AwareDateTime(
        metadata={"description": "When the intent expires, instead of expires_in; must be in the future"}
    )

    OPENAPI_RULES: dict[str, Any] = {
        "not": {"required": ["expires_in", "expires_at"]},
    }

    @ma.validates_schema
    def _one_expiry(self, data: dict[str, Any], **_kw: Any) -> None:
        if "expires_in" in data and "expires_at" in data:
            raise ma.ValidationError("Give expires_in or expires_at, not both.", "expires_at")


class IntentOut(ma.Schema):
    id = ma.fields.String(metadata={"description": "Public id, pi_ and twelve characters"})
    merchant_id = ma.fields.String()
    reference = ma.fields.String(metadata={"description": "CP and eight characters; in the transfer memo"})
    amount = ma.fields.Integer()
    memo = ma.fields.String(allow_none=True)
    payload = ma.fields.String(metadata={"description": "The EMVCo/VietQR payload of the dynamic QR"})
    qr_url = ma.fields.String(metadata={"description": "The QR image of this intent (PNG; ?format=svg|txt)"})
    status = ma.fields.String()
    expires_at = ma.fields.DateTime()
    created_at = ma.fields.DateTime()
    settled_at = ma.fields.DateTime(allow_none=True)
    paid_amount = ma.fields.Integer(allow_none=True)


IntentPage = page_schema(IntentOut, "PaymentIntentPage")


class IntentArgs(PageArgs):
    status = ma.fields.String(validate=V.OneOf([s.value for s in domain.IntentStatus]))


# ---------------------------------------------------------------------------------------------
# Genuine-code check


class VerifyIn(ma.Schema):
    payload = ma.fields.String(required=True, validate=V.Length(min=1, max=1024))


class Reason(ma.Schema):
    code = ma.fields.String()
    message = ma.fields.String()
    error_code = ma.fields.String(metadata={"description": "The QR decoder's error code, for a broken code"})
    offset = ma.fields.Integer(allow_none=True, metadata={"description": "Character offset of the fault"})


class PublicMerchant(ma.Schema):
    id = ma.fields.String()
    display_name = ma.fields.String()
    qr_name = ma.fields.String()
    market_code = ma.fields.String()
    market_name = ma.fields.String()
    stall = ma.fields.String()
    ward = ma.fields.String()
    province = ma.fields.String()
    status = ma.fields.String()


class VerifyOut(ma.Schema):
    genuine = ma.fields.Boolean()
    merchant = ma.fields.Nested(PublicMerchant, allow_none=True)
    intent = ma.fields.Dict(
        allow_none=True, metadata={"description": "reference, amount, status, expires_at"}
    )
    reasons = ma.fields.List(ma.fields.Nested(Reason))

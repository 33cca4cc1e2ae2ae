"""``/v1/merchants`` and ``/v1/qr/verify``: thin views over the merchant services.

Roles: officers and admins register and edit merchants and import files; they, auditors and
merchant users read. A merchant user sees only its own merchant: any other merchant's id is
answered 404 exactly like an id that does not exist. Payment intents are created, read and
cancelled by officers, admins and the merchant's own users. ``POST /v1/qr/verify`` is public
and shows only a merchant's public details (no holder name, no phone, no account); it is
limited to ``CHOPAY_PUBLIC_RATE_LIMIT`` requests per client address (``chopay.ratelimit``).
"""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, request, url_for
from flask.views import MethodView
from flask_smorest import Blueprint

from chopay import auth, db, ratelimit
from chopay.api import ProblemSchema
from chopay.crypto import data_keys
from chopay.errors import PROBLEM_JSON
from chopay.idempotency import OPENAPI_PARAMETER, idempotent
from chopay.pagination import PageArgs, decode_cursor, page
from merchants import schemas
from merchants.errors import InvalidInput, MerchantGone
from merchants.models import Merchant, PaymentIntent
from merchants.services import codes, imports, intents, registry
from qr import render_png, render_svg

WRITERS = ("officer", "admin")
READERS = ("officer", "admin", "auditor", "merchant")
SELLERS = ("officer", "admin", "merchant")

blp = Blueprint(
    "merchants", __name__, url_prefix="/v1/merchants", description="Market vendors and their QR codes."
)
verify_blp = Blueprint("qr", __name__, url_prefix="/v1/qr", description="The genuine-code check, for buyers.")
BLUEPRINTS = (blp, verify_blp)

QR_RESPONSES = {
    "200": {
        "description": "The QR code",
        "content": {
            "image/png": {"schema": {"type": "string", "format": "binary"}},
            "image/svg+xml": {"schema": {"type": "string"}},
            "text/plain": {"schema": {"type": "string"}},
        },
        "headers": {
            "ETag": {"schema": {"type": "string"}},
            "Cache-Control": {"schema": {"type": "string"}},
        },
    },
    "304": {"description": "Not modified: the request's If-None-Match holds the current ETag"},
}
CACHE_CONTROL = "private, no-cache"
"""Clients keep the image but ask again each time (answered 304): a suspension is seen at once."""


@blp.url_value_preprocessor
def _upload_limit(endpoint: str | None, _values: Any) -> None:
    """Let the import take bodies up to CHOPAY_MAX_UPLOAD_BYTES (before anything reads them)."""
    if endpoint == "merchants.import_merchants":
        request.max_content_length = current_app.config["CHOPAY"].max_upload_bytes


def _view(merchant: Merchant) -> dict[str, Any]:
    return registry.view(data_keys(), merchant)


def _visible(merchant_id: str, *, lock: bool = False) -> Merchant:
    return registry.get_visible(db.session(), merchant_id, lock=lock)


@blp.route("")
class Merchants(MethodView):
    @auth.roles(*WRITERS)
    @idempotent
    @blp.arguments(schemas.MerchantIn)
    @blp.response(201, schemas.MerchantOut)
    @blp.doc(parameters=[OPENAPI_PARAMETER])
    def post(self, data: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
        """Register a vendor; 409 names the active vendor already paid at that bank account."""
        merchant = registry.create(db.session(), data_keys(), data, by=auth.current_user().id)
        return _view(merchant), {"Location": f"{blp.url_prefix}/{merchant.public_id}"}

    @auth.roles(*READERS)
    @blp.arguments(schemas.MerchantArgs, location="query")
    @blp.response(200, schemas.MerchantPage)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """List vendors by market, ward, status or name (case and diacritics ignored), oldest first."""
        limit = args.pop("limit")
        after = decode_cursor(args.pop("cursor"))
        found = registry.search(db.session(), user=auth.current_user(), after=after, limit=limit, **args)
        shown = page(found, limit)
        shown["items"] = [_view(m) for m in shown["items"]]
        return shown


@blp.route("/import", methods=["POST"])
@auth.roles(*WRITERS)
@idempotent
@blp.response(200, schemas.MerchantImportOut)
@blp.doc(
    parameters=[OPENAPI_PARAMETER],
    requestBody={"required": True, "content": {"multipart/form-data": {"schema": schemas.FileUpload}}},
)
def import_merchants() -> imports.ImportReport:
    """Register vendors from a CSV or XLSX file with the JSON field names as columns; report every row."""
    if request.mimetype != "multipart/form-data":
        raise InvalidInput(
            f"Send the file as multipart/form-data in the part 'file', not {request.mimetype or 'no body'}.",
            code="upload_media_type",
            errors={"files": {"file": ["Missing data for required field."]}},
        )
    upload = request.files.get("file")
    if upload is None:
        raise InvalidInput(
            "The multipart body has no part 'file'.",
            code="file_missing",
            errors={"files": {"file": ["Missing data for required field."]}},
        )
    return imports.import_file(db.session(), data_keys(), upload.stream, by=auth.current_user().id)


@blp.route("/<merchant:merchant_id>")
class MerchantById(MethodView):
    @auth.roles(*READERS)
    @blp.response(200, schemas.MerchantOut)
    def get(self, merchant_id: str) -> dict[str, Any]:
        """Get a vendor; the phone is masked."""
        return _view(_visible(merchant_id))

    @auth.roles(*WRITERS)
    @blp.arguments(schemas.MerchantPatch)
    @blp.response(200, schemas.MerchantOut)
    def patch(self, data: dict[str, Any], merchant_id: str) -> dict[str, Any]:
        """Change a vendor's fields; a new display name also renames a QR name derived from it."""
        merchant = _visible(merchant_id, lock=True)
        return _view(registry.update(db.session(), data_keys(), merchant, data, by=auth.current_user().id))


@blp.route("/<merchant:merchant_id>/status", methods=["POST"])
@auth.roles(*WRITERS)
@blp.arguments(schemas.StatusIn)
@blp.response(200, schemas.MerchantOut)
def change_status(data: dict[str, Any], merchant_id: str) -> dict[str, Any]:
    """Suspend, reactivate or close a vendor; the change is recorded with who made it and why."""
    merchant = _visible(merchant_id)
    registry.change_status(
        db.session(), merchant, data["status"], reason=data.get("reason"), by=auth.current_user().id
    )
    return _view(merchant)


@blp.route("/<merchant:merchant_id>/status-history")
@auth.roles(*READERS)
@blp.arguments(PageArgs, location="query")
@blp.response(200, schemas.StatusChangePage)
def status_history(args: dict[str, Any], merchant_id: str) -> dict[str, Any]:
    """List a vendor's status changes, oldest first: from, to, by whom, when and why."""
    merchant = _visible(merchant_id)
    changes = registry.history(
        db.session(), merchant, after=decode_cursor(args["cursor"]), limit=args["limit"]
    )
    return page(changes, args["limit"])


def _qr_response(payload: str, args: dict[str, Any], filename: str) -> Response:
    fmt, size = args["format"], args["size"]
    tag = codes.etag(payload, fmt, size)
    if request.if_none_match.contains(tag):
        resp = Response(status=304)
    elif fmt == "png":
        resp = Response(render_png(payload, box_size=size), mimetype="image/png")
    elif fmt == "svg":
        resp = Response(render_svg(payload, box_size=size), mimetype="image/svg+xml")
    else:
        resp = Response(payload + "\n", mimetype="text/plain")
    resp.set_etag(tag)
    resp.headers["Cache-Control"] = CACHE_CONTROL
    if resp.status_code == 200:
        resp.headers["Content-Disposition"] = f'inline; filename="{filename}.{fmt}"'
    return resp


@blp.route("/<merchant:merchant_id>/qr")
@auth.roles(*READERS)
@blp.arguments(schemas.QRArgs, location="query")
@blp.arguments(schemas.ConditionalHeaders, location="headers")
@blp.doc(responses=QR_RESPONSES)
@blp.alt_response(
    410, schema=ProblemSchema, content_type=PROBLEM_JSON, description="The vendor is suspended or closed"
)
def static_qr(args: dict[str, Any], _conditional: dict[str, Any], merchant_id: str) -> Response:
    """Get a vendor's static VietQR for its stall sticker, as PNG, SVG or the payload text."""
    merchant = _visible(merchant_id)
    codes.require_served(merchant)
    return _qr_response(codes.static_payload(merchant), args, merchant.public_id)


# ---------------------------------------------------------------------------------------------
# Payment intents


def _intent_view(merchant: Merchant, intent: PaymentIntent) -> dict[str, Any]:
    return {
        "id": intent.public_id,
        "merchant_id": merchant.public_id,
        "reference": intent.reference,
        "amount": intent.amount,
        "memo": intent.memo,
        "payload": intent.payload,
        "qr_url": url_for("merchants.intent_qr", merchant_id=merchant.public_id, intent_id=intent.public_id),
        "status": intent.status,
        "expires_at": intent.expires_at,
        "created_at": intent.created_at,
        "settled_at": intent.settled_at,
        "paid_amount": intent.paid_amount,
    }


@blp.route("/<merchant:merchant_id>/payment-intents")
class Intents(MethodView):
    @auth.roles(*SELLERS)
    @idempotent
    @blp.arguments(schemas.IntentIn)
    @blp.response(201, schemas.IntentOut)
    @blp.doc(parameters=[OPENAPI_PARAMETER])
    def post(self, data: dict[str, Any], merchant_id: str) -> tuple[dict[str, Any], dict[str, str]]:
        """Open a payment intent: a dynamic QR for an exact amount, expiring in 15 minutes by default."""
        merchant = _visible(merchant_id)
        intent = intents.create_intent(db.session(), merchant, **data, by=auth.current_user().id)
        view = _intent_view(merchant, intent)
        return view, {"Location": f"{blp.url_prefix}/{merchant.public_id}/payment-intents/{intent.public_id}"}

    @auth.roles(*SELLERS)
    @blp.arguments(schemas.IntentArgs, location="query")
    @blp.response(200, schemas.IntentPage)
    def get(self, args: dict[str, Any], merchant_id: str) -> dict[str, Any]:
        """List a vendor's payment intents, oldest first."""
        merchant = _visible(merchant_id)
        limit = args["limit"]
        found = intents.list_intents(
            db.session(),
            merchant,
            status=args.get("status"),
            after=decode_cursor(args["cursor"]),
            limit=limit,
        )
        shown = page(found, limit)
        shown["items"] = [_intent_view(merchant, i) for i in shown["items"]]
        return shown


@blp.route("/<merchant:merchant_id>/payment-intents/<intent:intent_id>")
@auth.roles(*SELLERS)
@blp.response(200, schemas.IntentOut)
def get_intent(merchant_id: str, intent_id: str) -> dict[str, Any]:
    """Get a payment intent and its status."""
    merchant = _visible(merchant_id)
    return _intent_view(merchant, intents.get_intent(db.session(), merchant, intent_id))


@blp.route("/<merchant:merchant_id>/payment-intents/<intent:intent_id>/cancel", methods=["POST"])
@auth.roles(*SELLERS)
@blp.response(200, schemas.IntentOut)
def cancel_intent(merchant_id: str, intent_id: str) -> dict[str, Any]:
    """Cancel an open payment intent; a paid, expired or cancelled one is a 409."""
    merchant = _visible(merchant_id)
    return _intent_view(merchant, intents.cancel_intent(db.session(), merchant, intent_id))


@blp.route("/<merchant:merchant_id>/payment-intents/<intent:intent_id>/qr")
@auth.roles(*SELLERS)
@blp.arguments(schemas.QRArgs, location="query")
@blp.arguments(schemas.ConditionalHeaders, location="headers")
@blp.doc(responses=QR_RESPONSES)
@blp.alt_response(
    410, schema=ProblemSchema, content_type=PROBLEM_JSON, description="The intent is no longer open"
)
def intent_qr(
    args: dict[str, Any], _conditional: dict[str, Any], merchant_id: str, intent_id: str
) -> Response:
    """Get a payment intent's dynamic QR; 410 once it is no longer open."""
    merchant = _visible(merchant_id)
    codes.require_served(merchant)
    intent = intents.get_intent(db.session(), merchant, intent_id)
    status = intents.effective_status(intent)
    if status != "open":
        raise MerchantGone(f"Payment intent {intent_id} is {status}.", code=f"intent_{status}")
    return _qr_response(intent.payload, args, intent.public_id)


# ---------------------------------------------------------------------------------------------
# Genuine-code check


@verify_blp.route("/verify", methods=["POST"])
@ratelimit.public
@verify_blp.arguments(schemas.VerifyIn)
@verify_blp.response(200, schemas.VerifyOut)
@verify_blp.alt_response(
    429,
    schema=ProblemSchema,
    content_type=PROBLEM_JSON,
    description="Over CHOPAY_PUBLIC_RATE_LIMIT per client",
)
@verify_blp.doc(security=[])
def verify(data: dict[str, Any]) -> codes.Verdict:
    """Tell whether a scanned VietQR is a registered vendor's genuine code, and if not, why."""
    return codes.verify(db.session(), data["payload"])

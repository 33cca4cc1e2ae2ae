"""Bank-notification intake, payments, statements, live events and market figures.

The three intake endpoints are public: each notification is authenticated by its connector's
signature or API key (401 ``signature_*`` / ``connector_unknown``), never by a bearer token.
They answer ``{"success": true, ...}``: 201 for a new payment, 202 for a notification kept
unassigned (201 on the SePay endpoint, since SePay retries anything but 200 and 201), 200 for a
redelivery (with the original payment), for a SePay debit and for a payOS payment reported as
not made (``code`` other than "00", or ``success`` false), both recorded as ignored. A
reused bank transaction id with a different body is a 409 ``notification_conflict``; the
conflicting body is kept for review (``GET /v1/bank-notifications/conflicts``).

Officers and admins read notifications and assign unassigned ones; auditors read them too. A
merchant user reads only its own merchant's payments, statement and events (404 for another's).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, cast

from flask import Response, current_app, request
from flask_smorest import Blueprint

from chopay import auth, db
from chopay.crypto import data_keys
from chopay.errors import TITLES, BadRequest, ChopayError, Unauthorized, Unprocessable
from chopay.idempotency import OPENAPI_PARAMETER, idempotent
from chopay.pagination import PageArgs, decode_cursor, page
from merchants.intake import connectors, events, formats, group, schemas, services, statements
from merchants.intake.models import BankNotification, NotificationConflict, Payment
from merchants.models import Merchant
from merchants.services import registry
from payments.rails import webhooks as wh

WRITERS = ("officer", "admin")
READERS = ("officer", "admin", "auditor")
MERCHANT_READERS = ("merchant", "officer", "admin")
_LAST_EVENT_ID = re.compile(r"[0-9]{1,18}")

blp = Blueprint(
    "bank_notifications",
    __name__,
    url_prefix="/v1/bank-notifications",
    description="Bank notifications: payments reported by banks and bank-feed services.",
)
merchant_blp = Blueprint(
    "merchant_payments",
    __name__,
    url_prefix="/v1/merchants",
    description="A merchant's payments, daily statement and live payment events.",
)
markets_blp = Blueprint("markets", __name__, url_prefix="/v1/markets", description="Market figures.")
BLUEPRINTS = (blp, merchant_blp, markets_blp)


class SignatureRefused(Unauthorized):
    """A notification whose connector, signature or API key is not accepted."""


class StreamsExhausted(ChopayError):
    status = 503
    code = "streams_exhausted"
    title = TITLES[503]


def _body_doc(schema: dict[str, Any], headers: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "security": [],
        "parameters": headers,
        "requestBody": {"required": True, "content": {"application/json": {"schema": schema}}},
    }


def _header(name: str, description: str, **schema: Any) -> dict[str, Any]:
    return {
        "in": "header",
        "name": name,
        "required": False,
        "schema": {"type": "string", **schema},
        "description": description,
    }


TEXT = {"type": "string", "pattern": "^[^\\x00-\\x1f\\x7f-\\x9f]*$"}
"""A JSON string as the intake stores it: no control character."""


def _text(**rules: Any) -> dict[str, Any]:
    return {**TEXT, **rules}


def _object(required: list[str], properties: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "type": "object",
        "required": required,
        "properties": properties,
        "additionalProperties": False,
        **extra,
    }


NULLABLE_TEXT = _text(nullable=True, maxLength=500)
CHOPAY_BODY = _object(
    ["bank_txn_id", "bin", "account_number", "amount", "description", "occurred_at"],
    {
        "bank_txn_id": {"type": "string", "pattern": "^[!-~]{1,100}$"},
        "bin": {"type": "string", "pattern": "^[0-9]{6}$"},
        "account_number": _text(minLength=1, maxLength=19),
        "amount": {"type": "integer", "minimum": 1, "maximum": wh.MAX_AMOUNT},
        "description": _text(maxLength=500),
        "occurred_at": {"type": "string", "format": "date-time"},
        "payer_name": NULLABLE_TEXT,
    },
)
SEPAY_BODY = _object(
    [
        "id",
        "gateway",
        "transactionDate",
        "accountNumber",
        "content",
        "transferType",
        "transferAmount",
        "accumulated",
    ],
    {
        "id": {"type": "integer"},
        "gateway": _text(minLength=1, maxLength=500),
        "transactionDate": {
            "type": "string",
            "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}$",
        },
        "accountNumber": _text(minLength=1, maxLength=19),
        "code": NULLABLE_TEXT,
        "content": _text(maxLength=500),
        "transferType": {"type": "string", "enum": ["in", "out"]},
        "transferAmount": {"type": "integer", "minimum": 1, "maximum": wh.MAX_AMOUNT},
        "accumulated": {"type": "integer"},
        "subAccount": NULLABLE_TEXT,
        "referenceCode": NULLABLE_TEXT,
        "description": _text(maxLength=500),
    },
    description="SePay's webhook JSON (transactionDate in Vietnam time).",
)
PAYOS_DATA = _object(
    [
        "orderCode",
        "amount",
        "description",
        "accountNumber",
        "reference",
        "transactionDateTime",
        "currency",
        "paymentLinkId",
        "code",
        "desc",
    ],
    {
        "orderCode": {"type": "integer"},
        "amount": {"type": "integer", "minimum": 1, "maximum": wh.MAX_AMOUNT},
        "description": _text(maxLength=500),
        "accountNumber": _text(maxLength=19),
        "reference": {"type": "string", "pattern": "^[!-~]{1,100}$"},
        "transactionDateTime": {"type": "string"},
        "currency": _text(maxLength=3),
        "paymentLinkId": _text(maxLength=100),
        "code": _text(maxLength=10),
        "desc": _text(maxLength=500),
        **{
            name: NULLABLE_TEXT
            for name in (
                "counterAccountBankId",
                "counterAccountBankName",
                "counterAccountName",
                "counterAccountNumber",
                "virtualAccountName",
                "virtualAccountNumber",
            )
        },
    },
)
PAYOS_BODY = _object(
    ["code", "desc", "success", "data", "signature"],
    {
        "code": _text(maxLength=10),
        "desc": _text(maxLength=500),
        "success": {"type": "boolean"},
        "data": PAYOS_DATA,
        "signature": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
    },
    description="payOS's webhook: signature is the payOS checksum of data.",
)


def _connector(name: str | None, fmt: str) -> connectors.Connector:
    found = None
    if name:
        found = connectors.resolve(db.session(), data_keys, name, connectors.declared())
    if found is None or found.format != fmt:
        raise SignatureRefused(f"No {fmt}-format connector is named {name!r}.", code="connector_unknown")
    return found


def _intake(parse: Callable[[], formats.Incoming], sepay: bool = False) -> Response:
    """Verify with ``parse``, record, and answer as the intake endpoints do."""
    try:
        incoming = formats.check_time(parse())
    except wh.WebhookError as exc:
        if exc.code != "payload_malformed":
            raise SignatureRefused(exc.message, code=exc.code) from None
        raise Unprocessable(exc.message, code="payload_malformed", errors=formats.field_errors(exc)) from None
    session = db.session()
    keys = data_keys()
    body = request.get_data(cache=True)
    database = db.get_db()
    try:
        if database.engine.dialect.name == "postgresql" and not db.has_open_work():
            # Nothing else of the request is written: the delivery commits on its own, together
            # with concurrent ones (group commit), before this answers.
            delivery = services.Delivery(incoming, body, keys, events.publisher())
            outcome = group.record_alone(database, delivery)
        else:
            outcome = services.record(session, keys, incoming, body, events.publisher())
    except services.ReusedId as exc:
        session.rollback()
        with db.unit_of_work() as s:
            services.keep_conflict(s, keys, exc.notification_id, incoming.content_sha256, body)
        raise
    if outcome.duplicate or outcome.status == services.IGNORED:
        status = 200
    elif outcome.payment is None:
        status = 201 if sepay else 202
    else:
        status = 201
    # Serialised here rather than by the IntakeOut schema, which documents it: the answer is
    # the hot path's last step, and its fields are plain values already.
    answer = cast(Response, current_app.json.response(intake_view(session, outcome)))
    answer.status_code = status
    return answer


def _merchant_public_id(session: Any, merchant_id: int) -> str:
    merchant = session.get(Merchant, merchant_id)
    return merchant.public_id if merchant is not None else ""


def _payment(
    session: Any, payment: Payment | services.PaymentRecord | None, merchant: str | None = None
) -> dict[str, Any] | None:
    if payment is None:
        return None
    return schemas.payment_view(payment, merchant or _merchant_public_id(session, payment.merchant_id))


def intake_view(session: Any, outcome: services.Outcome) -> dict[str, Any]:
    """Return an intake answer as ``IntakeOut`` dumps it (times in ISO 8601), ready for JSON."""
    payment = _payment(session, outcome.payment, outcome.merchant)
    if payment is not None:
        payment["occurred_at"] = payment["occurred_at"].isoformat()
        payment["recorded_at"] = payment["recorded_at"].isoformat()
    return {
        "success": True,
        "status": outcome.status,
        "duplicate": outcome.duplicate,
        "notification": outcome.notification_id,
        "payment": payment,
    }


@blp.route("", methods=["POST"])
@blp.response(201, schemas.IntakeOut, description="A payment was recorded")
@blp.alt_response(200, schema=schemas.IntakeOut, description="A redelivery: the original payment")
@blp.alt_response(202, schema=schemas.IntakeOut, description="Kept unassigned: no merchant matched")
@blp.doc(
    **_body_doc(
        CHOPAY_BODY,
        [
            _header(wh.CONNECTOR_HEADER, "The connector's name"),
            _header(wh.SIGNATURE_HEADER, "t=<unix seconds>,v1=<hex HMAC-SHA256 of 't.body'>"),
        ],
    )
)
def receive_chopay() -> Response:
    """Receive a chopay-format bank notification, signed with the connector's secret."""
    body = request.get_data(cache=True)
    connector = _connector(request.headers.get(wh.CONNECTOR_HEADER), "chopay")
    return _intake(lambda: formats.chopay(connector, body, request.headers.get(wh.SIGNATURE_HEADER)))


@blp.route("/sepay/<ref:connector>", methods=["POST"])
@blp.response(201, schemas.IntakeOut, description="A payment was recorded, or kept unassigned")
@blp.alt_response(200, schema=schemas.IntakeOut, description="A redelivery, or a debit (ignored)")
@blp.doc(**_body_doc(SEPAY_BODY, [_header("Authorization", "Apikey <the connector's API key>")]))
def receive_sepay(connector: str) -> Response:
    """Receive a SePay webhook; SePay stops retrying on {"success": true} with 200 or 201."""
    found = _connector(connector, "sepay")
    body = request.get_data(cache=True)
    return _intake(lambda: formats.sepay(found, body, request.headers.get("Authorization")), sepay=True)


@blp.route("/payos/<ref:connector>", methods=["POST"])
@blp.response(201, schemas.IntakeOut, description="A payment was recorded")
@blp.alt_response(200, schema=schemas.IntakeOut, description="A redelivery: the original payment")
@blp.alt_response(202, schema=schemas.IntakeOut, description="Kept unassigned: no merchant matched")
@blp.doc(**_body_doc(PAYOS_BODY, []))
def receive_payos(connector: str) -> Response:
    """Receive a payOS payment webhook, verified with the connector's checksum key."""
    found = _connector(connector, "payos")
    body = request.get_data(cache=True)
    return _intake(lambda: formats.payos(found, body))


def _notification_view(session: Any, n: BankNotification) -> dict[str, Any]:
    return {
        "id": n.id,
        "connector": n.connector,
        "format": n.format,
        "status": n.status,
        "direction": n.direction,
        "bank_txn_id": n.bank_txn_id,
        "bin": n.bin,
        "account_number": "*" * 4 + n.account_last4,
        "amount": n.amount,
        "description": n.description,
        "code": n.code,
        "sender_status": n.sender_status,
        "occurred_at": n.occurred_at,
        "received_at": n.received_at,
        "assigned_at": n.assigned_at,
        "payment": _payment(session, services.payment_of(session, n.id)),
    }


@blp.route("", methods=["GET"])
@auth.roles(*READERS)
@blp.arguments(schemas.NotificationArgs, location="query")
@blp.response(200, schemas.NotificationPage)
def list_notifications(args: dict[str, Any]) -> dict[str, Any]:
    """List bank notifications, oldest first; `status=unassigned` lists those waiting for an officer."""
    s = db.session()
    found = services.list_notifications(
        s, status=args["status"], after=decode_cursor(args["cursor"]), limit=args["limit"] + 1
    )
    result = page(found, args["limit"])
    result["items"] = [_notification_view(s, n) for n in result["items"]]
    return result


@blp.route("/<id:notification_id>", methods=["GET"])
@auth.roles(*READERS)
@blp.response(200, schemas.NotificationOut)
def get_notification(notification_id: int) -> dict[str, Any]:
    """Get one bank notification (the account number masked) and its payment."""
    s = db.session()
    return _notification_view(s, services.get_notification(s, notification_id))


@blp.route("/<id:notification_id>/assign", methods=["POST"])
@auth.roles(*WRITERS)
@idempotent
@blp.arguments(schemas.AssignIn)
@blp.response(201, schemas.PaymentOut)
@blp.doc(parameters=[OPENAPI_PARAMETER])
def assign_notification(data: dict[str, Any], notification_id: int) -> dict[str, Any]:
    """Record an unassigned notification as a payment to a merchant, optionally settling an intent."""
    s = db.session()
    merchant = registry.get_visible(s, data["merchant"])
    payment = services.assign(
        s,
        notification_id,
        merchant,
        reference=data["reference"],
        by=auth.current_user().id,
        publish=events.publisher(),
    )
    return schemas.payment_view(payment, merchant.public_id)


@blp.route("/conflicts", methods=["GET"])
@auth.roles(*READERS)
@blp.arguments(PageArgs, location="query")
@blp.response(200, schemas.ConflictPage)
def list_conflicts(args: dict[str, Any]) -> dict[str, Any]:
    """List deliveries that reused a bank transaction id with a different body, kept for review."""
    found: list[NotificationConflict] = services.list_conflicts(
        db.session(), after=decode_cursor(args["cursor"]), limit=args["limit"] + 1
    )
    result = page(found, args["limit"])
    result["items"] = [
        {
            "id": c.id,
            "notification": c.notification_id,
            "content_sha256": c.content_sha256,
            "received_at": c.received_at,
        }
        for c in result["items"]
    ]
    return result


# ---------------------------------------------------------------------------------------------
# A merchant's payments, statements and events


@merchant_blp.route("/<merchant:merchant_id>/payments", methods=["GET"])
@auth.roles(*MERCHANT_READERS)
@merchant_blp.arguments(schemas.PaymentArgs, location="query")
@merchant_blp.response(200, schemas.PaymentPage)
def list_payments(args: dict[str, Any], merchant_id: str) -> dict[str, Any]:
    """List a merchant's payments by id, optionally within Vietnam days from..to."""
    statements.check_period(args["from_"], args["to"])
    s = db.session()
    merchant = registry.get_visible(s, merchant_id)
    found = statements.list_payments(
        s,
        merchant,
        first=args["from_"],
        last=args["to"],
        after=decode_cursor(args["cursor"]),
        limit=args["limit"] + 1,
    )
    result = page(found, args["limit"])
    result["items"] = [schemas.payment_view(p, merchant.public_id) for p in result["items"]]
    return result


def _statement(merchant_id: str, day: Any) -> dict[str, Any]:
    statements.check_day(day)
    s = db.session()
    merchant = registry.get_visible(s, merchant_id)
    found = statements.statement(s, merchant, day)
    view = dict(found)
    for key in ("first", "last"):
        view[key] = schemas.payment_view(found[key], merchant.public_id) if found[key] is not None else None
    view["payments"] = [schemas.payment_view(p, merchant.public_id) for p in found["payments"]]
    view["_rows"] = found
    return view


@merchant_blp.route("/<merchant:merchant_id>/statement", methods=["GET"])
@auth.roles(*MERCHANT_READERS)
@merchant_blp.arguments(schemas.StatementArgs, location="query")
@merchant_blp.response(200, schemas.StatementOut)
def get_statement(args: dict[str, Any], merchant_id: str) -> dict[str, Any]:
    """Get a merchant's statement of one Vietnam day: count, total, first and last payment, all of them."""
    view = _statement(merchant_id, args["date"])
    view.pop("_rows")
    return view


@merchant_blp.route("/<merchant:merchant_id>/statement.csv", methods=["GET"])
@auth.roles(*MERCHANT_READERS)
@merchant_blp.arguments(schemas.StatementArgs, location="query")
@merchant_blp.response(200, content_type="text/csv", description="The day's payments as CSV")
def get_statement_csv(args: dict[str, Any], merchant_id: str) -> Response:
    """Get a merchant's statement of one Vietnam day as CSV."""
    view = _statement(merchant_id, args["date"])
    name = f"statement-{view['merchant']}-{args['date'].isoformat()}.csv"
    return Response(
        statements.statement_csv(view["_rows"]),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@merchant_blp.route("/<merchant:merchant_id>/events", methods=["GET"])
@auth.roles(*MERCHANT_READERS)
@merchant_blp.response(200, content_type="text/event-stream", description="payment.received events (SSE)")
@merchant_blp.doc(
    parameters=[
        _header("Last-Event-ID", "Replay the payments after this event id first", pattern="^[0-9]{1,18}$")
    ]
)
def stream_events(merchant_id: str) -> Response:
    """Stream a merchant's payment.received events (Server-Sent Events); Last-Event-ID replays missed ones."""
    last = (request.headers.get("Last-Event-ID") or "").strip() or None
    if last is not None and not _LAST_EVENT_ID.fullmatch(last):
        raise BadRequest(
            "Last-Event-ID is the id of an event this stream sent.", code="last_event_id_invalid"
        )
    s = db.session()
    merchant = registry.get_visible(s, merchant_id)
    merchant_pk = merchant.id
    s.close()  # the stream is long: it holds no database connection
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    inbox = events.bus(app).subscribe(merchant_pk)
    if inbox is None:
        raise StreamsExhausted(
            "This process serves as many event streams as it may; reconnect later or to `chopay events`.",
        )
    settings = app.config["CHOPAY"]
    body = events.stream(
        app, merchant_pk, inbox, int(last) if last is not None else None, settings.events_stream_seconds
    )
    return Response(
        body,
        mimetype="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        direct_passthrough=True,
    )


@markets_blp.route("/<ref:market_code>/figures", methods=["GET"])
@auth.roles(*WRITERS)
@markets_blp.arguments(schemas.FiguresArgs, location="query")
@markets_blp.response(200, schemas.FiguresOut)
def market_figures(args: dict[str, Any], market_code: str) -> dict[str, Any]:
    """Get a market's cashless-campaign figures for the Vietnam days from..to."""
    statements.check_period(args["from_"], args["to"], limit=statements.MAX_PERIOD_DAYS)
    return statements.market_figures(db.session(), market_code, args["from_"], args["to"])

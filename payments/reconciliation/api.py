"""``/v1/reconciliations``: auditors import bank statements and read reports pinned to the ledger.

Auditors and admins only, like the ledger. A statement is posted as ``multipart/form-data``
(``statement`` file, ``account``, ``format``); it is validated in the request (a bad file is a
422 listing every located problem, and nothing is stored) and reconciled by an rq job: the
answer is 202 with the queued reconciliation, or 200 with the first import of a statement
already imported. Descriptions of statement lines can hold payer names: they are shown here,
to auditors and admins only, and stored encrypted; the bank's account id is shown masked.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from flask import Response, current_app, stream_with_context
from flask_smorest import Blueprint

from chopay import auth, crypto, db
from chopay.idempotency import OPENAPI_PARAMETER, idempotent
from chopay.pagination import PageArgs, decode_cursor, encode_cursor, page
from payments.ledger import domain as ledger_domain
from payments.ledger import keys as ledger_keys
from payments.ledger.domain import public_id
from payments.ledger.models import Entry
from payments.reconciliation import report, schemas, seal, services
from payments.reconciliation.errors import ReportNotReady
from payments.reconciliation.models import STATEMENT_ACCOUNT, Decision, Reconciliation, Total
from payments.reconciliation.report import ReportItem
from payments.reconciliation.statements import PRESETS, StatementFormat

blp = Blueprint(
    "reconciliation",
    __name__,
    url_prefix="/v1/reconciliations",
    description="Bank statements matched against the signed ledger, in reports sealed in its log.",
)

READERS = ("auditor", "admin")
# flask-smorest documents form and file arguments apart; this is the one multipart body they
# make, with what marshmallow checks but does not state: no other field.
MULTIPART = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "additionalProperties": False,
                "required": ["statement", "account"],
                "properties": {
                    "statement": {"type": "string", "format": "binary"},
                    "account": {"type": "string", "pattern": f"^(?:{ledger_domain.ACCOUNT_CODE.pattern})$"},
                    "format": {"type": "string", "enum": [f.value for f in StatementFormat]},
                    "preset": {"type": "string", "enum": sorted(PRESETS)},
                    "from": {"type": "string", "format": "date"},
                    "to": {"type": "string", "format": "date"},
                    "date_window_days": {
                        "type": "integer",
                        "minimum": 0,
                        "maximum": services.MAX_WINDOW_DAYS,
                    },
                    "fuzzy_threshold": {"type": "integer", "minimum": 0, "maximum": 100},
                },
            }
        }
    },
}


def _describe(rec: Reconciliation) -> dict[str, Any]:
    """Return the API view of a reconciliation."""
    session = db.session()
    statement = services.statement_of(session, rec)
    totals = session.query(Total).filter(Total.reconciliation_id == rec.id).all()
    account = None
    if statement.account is not None:
        account = crypto.mask(crypto.data_keys().decrypt(statement.account, STATEMENT_ACCOUNT.context))
    log_index = None
    if rec.attestation_id is not None:
        log_index = session.query(Entry.idx).filter(Entry.transaction_id == rec.attestation_id).scalar()
    difference = None if rec.ledger_closing is None else statement.closing_balance - rec.ledger_closing
    return {
        "id": rec.id,
        "public_id": rec.public_id,
        "account": rec.account,
        "status": rec.status,
        "phase": rec.phase,
        "progress": rec.progress,
        "error": None if rec.error_code is None else {"code": rec.error_code, "detail": rec.error_detail},
        "statement": {
            "format": statement.format,
            "account": account,
            "period_from": statement.period_from,
            "period_to": statement.period_to,
            "opening_balance": statement.opening_balance,
            "closing_balance": statement.closing_balance,
            "lines": statement.line_count,
            "fingerprint": statement.fingerprint,
            "file_sha256": statement.content_sha256,
            "file_bytes": statement.content_bytes,
        },
        "config": {"date_window_days": rec.date_window_days, "fuzzy_threshold": rec.fuzzy_threshold},
        "checkpoint": {"size": rec.checkpoint_size, "root": rec.checkpoint_root, "note": rec.checkpoint_note},
        "balance": {**report.balance_check(rec, statement), "difference": difference},
        "totals": {t.category: t for t in totals},
        "seal": {
            "report_digest": rec.report_digest,
            "attestation": None if rec.attestation_id is None else public_id(rec.attestation_id),
            "log_index": log_index,
        },
        "items": rec.item_count,
        "created_at": rec.created_at,
        "started_at": rec.started_at,
        "finished_at": rec.finished_at,
    }


def _item(item: ReportItem, decision: Decision | None) -> dict[str, Any]:
    view = item.as_dict()
    view["decision"] = None
    if decision is not None:
        view["decision"] = {
            "action": decision.action,
            "note": decision.note,
            "reversal": None if decision.reversal_id is None else public_id(decision.reversal_id),
            "decided_by": decision.decided_by,
            "created_at": decision.created_at,
        }
    return view


def _decided(reconciliation_id: int, position: int) -> dict[str, Any]:
    rec = services.get(db.session(), reconciliation_id)
    found = report.page(db.session(), rec, crypto.data_keys(), after=position - 1, limit=1)
    return _item(*found[0])


@blp.route("", methods=["POST"])
@auth.roles(*READERS)
@idempotent
@blp.arguments(schemas.UploadForm, location="form")
@blp.arguments(schemas.UploadFile, location="files")
@blp.response(202, schemas.ReconciliationOut)
@blp.alt_response(200, schema=schemas.ReconciliationOut, description="The statement was imported before")
@blp.doc(parameters=[OPENAPI_PARAMETER], requestBody=MULTIPART)
def create(form: dict[str, Any], files: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """Import a bank statement and reconcile it against a ledger account (in the background)."""
    upload = services.Upload(
        data=files["statement"].read(),
        account=form["account"],
        format=None if form["format"] is None else StatementFormat(form["format"]),
        preset=form["preset"],
        period=None
        if form["period_from"] is form["period_to"] is None
        else (form["period_from"], form["period_to"]),
        date_window_days=form["date_window_days"] or services.DEFAULTS.date_window_days,
        fuzzy_threshold=form["fuzzy_threshold"] or services.DEFAULTS.fuzzy_threshold,
    )
    rec, created = services.import_upload(
        db.session(), upload, crypto.data_keys(), user_id=auth.current_user().id
    )
    return _describe(rec), 202 if created else 200


@blp.route("", methods=["GET"])
@auth.roles(*READERS)
@blp.arguments(PageArgs, location="query")
@blp.response(200, schemas.ReconciliationPage)
def list_reconciliations(args: dict[str, Any]) -> dict[str, Any]:
    """List reconciliations, oldest first."""
    found = services.list_reconciliations(
        db.session(), after=decode_cursor(args["cursor"]), limit=args["limit"] + 1
    )
    shown = page(found, args["limit"])
    return {"items": [_describe(r) for r in shown["items"]], "next_cursor": shown["next_cursor"]}


@blp.route("/<id:reconciliation_id>")
@auth.roles(*READERS)
@blp.response(200, schemas.ReconciliationOut)
def get_reconciliation(reconciliation_id: int) -> dict[str, Any]:
    """Get a reconciliation: progress, totals per category, the balance check and the pinned checkpoint."""
    return _describe(services.get(db.session(), reconciliation_id))


@blp.route("/<id:reconciliation_id>/items")
@auth.roles(*READERS)
@blp.arguments(schemas.ItemArgs, location="query")
@blp.response(200, schemas.ReconciliationItemPage)
def items(args: dict[str, Any], reconciliation_id: int) -> dict[str, Any]:
    """List a report's items in order, optionally of one category."""
    rec = services.get(db.session(), reconciliation_id)
    limit = args["limit"]
    found = report.page(
        db.session(),
        rec,
        crypto.data_keys(),
        after=decode_cursor(args["cursor"]),
        limit=limit + 1,
        category=args["category"],
    )
    shown = found[:limit]
    more = len(found) > limit and shown
    return {
        "items": [_item(i, d) for i, d in shown],
        "next_cursor": encode_cursor(shown[-1][0].position) if more else None,
    }


def _stream_rows(reconciliation_id: int) -> Iterator[str]:
    database, keys = db.get_db(), crypto.data_keys()
    with database.read_session() as s:
        yield from report.csv_chunks(s, services.get(s, reconciliation_id), keys)


@blp.route("/<id:reconciliation_id>/report.csv")
@auth.roles(*READERS)
@blp.response(200, {"type": "string"}, content_type="text/csv")
def report_csv(reconciliation_id: int) -> Response:
    """Download a report as CSV: every item, in order, with auditors' decisions."""
    rec = services.get(db.session(), reconciliation_id)
    if rec.status != "done":
        raise ReportNotReady(f"{rec.public_id} is {rec.status}: its report is not written yet.")
    return Response(
        stream_with_context(_stream_rows(reconciliation_id)),
        mimetype="text/csv",
        headers={"Content-Disposition": f"attachment; filename={rec.public_id}.csv"},
    )


@blp.route("/<id:reconciliation_id>/report.jsonl")
@auth.roles(*READERS)
@blp.response(200, {"type": "string"}, content_type="application/jsonl")
def report_canonical(reconciliation_id: int) -> Response:
    """Download a report's canonical form; its SHA-256 is the digest sealed in the ledger."""
    rec = services.get(db.session(), reconciliation_id)
    if rec.status != "done":
        raise ReportNotReady(f"{rec.public_id} is {rec.status}: its report is not written yet.")
    database, keys = db.get_db(), crypto.data_keys()

    def generate() -> Iterator[bytes]:
        with database.read_session() as s:
            yield from report.canonical_lines(s, services.get(s, reconciliation_id), keys)

    return Response(stream_with_context(generate()), mimetype="application/jsonl")


@blp.route("/<id:reconciliation_id>/verification")
@auth.roles(*READERS)
@blp.response(200, schemas.VerificationOut)
def verification(reconciliation_id: int) -> dict[str, Any]:
    """Check a report's seal: recompute its digest and prove the sealing leaf in the signed log."""
    rec = services.get(db.session(), reconciliation_id)
    verifiers = ledger_keys.trusted_verifiers(current_app.config["CHOPAY"])
    return seal.verify(db.session(), rec, crypto.data_keys(), verifiers)


def _decide(action: str, note: str | None, reconciliation_id: int, position: int) -> dict[str, Any]:
    user = auth.current_user().id
    services.decide(db.session(), reconciliation_id, position, action=action, user_id=user, note=note)
    return _decided(reconciliation_id, position)


@blp.route("/<id:reconciliation_id>/items/<id:position>/confirm", methods=["POST"])
@auth.roles(*READERS)
@idempotent
@blp.arguments(schemas.NoteIn, required=False)
@blp.response(200, schemas.ReconciliationItemOut)
@blp.doc(parameters=[OPENAPI_PARAMETER])
def confirm(data: dict[str, Any], reconciliation_id: int, position: int) -> dict[str, Any]:
    """Confirm a suggested match."""
    return _decide("confirmed", data.get("note"), reconciliation_id, position)


@blp.route("/<id:reconciliation_id>/items/<id:position>/reject", methods=["POST"])
@auth.roles(*READERS)
@idempotent
@blp.arguments(schemas.NoteIn, required=False)
@blp.response(200, schemas.ReconciliationItemOut)
@blp.doc(parameters=[OPENAPI_PARAMETER])
def reject(data: dict[str, Any], reconciliation_id: int, position: int) -> dict[str, Any]:
    """Reject a suggested match: the line and the ledger item stay unexplained."""
    return _decide("rejected", data.get("note"), reconciliation_id, position)


@blp.route("/<id:reconciliation_id>/items/<id:position>/reverse", methods=["POST"])
@auth.roles(*READERS)
@idempotent
@blp.arguments(schemas.ReverseIn)
@blp.response(201, schemas.ReverseOut)
@blp.doc(parameters=[OPENAPI_PARAMETER])
def reverse(data: dict[str, Any], reconciliation_id: int, position: int) -> dict[str, Any]:
    """Reverse the payout a returned item names, in the ledger (the auditor's confirmation)."""
    _, reversal = services.reverse_return(
        db.session(), reconciliation_id, position, user_id=auth.current_user().id, reason=data["reason"]
    )
    return {"item": _decided(reconciliation_id, position), "reversal": reversal}

"""``/v1/programs``, ``/v1/beneficiaries`` and ``/v1/batches``: thin views over the services.

Roles: officers and admins write (programs, beneficiaries, enrolments, batches), admins fund
programs, approvers approve or reject batches, and officers, admins, approvers and auditors
read. National ids, phones and account numbers leave only masked. A lookup by national id is a
POST (``/v1/beneficiaries/lookup``) so that the identifier never sits in a URL, where proxies
and browsers keep it. Uploads (``POST /v1/batches`` as multipart, ``/v1/beneficiaries/import``)
may be as large as ``CHOPAY_MAX_UPLOAD_BYTES``.
"""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask import Response, current_app, request, stream_with_context
from flask.views import MethodView
from flask_smorest import Blueprint

from chopay import auth, db, ratelimit
from chopay.crypto import data_keys
from chopay.idempotency import OPENAPI_PARAMETER, idempotent
from chopay.pagination import PageArgs, decode_cursor, page
from disbursement import domain, execution, precheck, receipts, schemas
from disbursement.errors import BeneficiaryNotFound, InvalidInput, UnsupportedUpload
from disbursement.models import Batch, Enrolment, Funding, Program
from disbursement.services import batches, controls, imports, programs, registry, reports
from payments.ledger.domain import public_id

READERS = ("officer", "admin", "approver", "auditor")
WRITERS = ("officer", "admin")

programs_blp = Blueprint("programs", __name__, url_prefix="/v1/programs", description="Benefit programs.")
beneficiaries_blp = Blueprint(
    "beneficiaries", __name__, url_prefix="/v1/beneficiaries", description="The beneficiary registry."
)
batches_blp = Blueprint("batches", __name__, url_prefix="/v1/batches", description="Payout batches.")
receipts_blp = Blueprint(
    "receipts", __name__, url_prefix="/v1/receipts", description="Payout receipts anyone can check."
)
BLUEPRINTS = (programs_blp, beneficiaries_blp, batches_blp, receipts_blp)
CONTROLLERS = ("officer", "admin", "approver")


def _load(schema: ma.Schema, data: Any, location: str) -> dict[str, Any]:
    """Load ``data`` with ``schema``; answer 422 with the field errors as webargs would."""
    try:
        loaded: dict[str, Any] = schema.load(data)
    except ma.ValidationError as exc:
        messages = exc.messages if isinstance(exc.messages, dict) else {"_schema": exc.messages}
        fields = ", ".join(sorted(map(str, messages)))
        raise InvalidInput(f"Invalid input in {location}: {fields}.", errors={location: messages}) from None
    return loaded


def _upload() -> Any:
    """Return the uploaded file of a multipart request, or answer 415 / 422."""
    if request.mimetype != "multipart/form-data":
        raise UnsupportedUpload(
            f"Send the file as multipart/form-data in the part 'file', not {request.mimetype or 'no body'}."
        )
    found = request.files.get("file")
    if found is None:
        raise InvalidInput(
            "The multipart body has no part 'file'.",
            errors={"files": {"file": ["Missing data for required field."]}},
        )
    return found


def _filename(upload: Any) -> str | None:
    name = "".join(c for c in (upload.filename or "") if c.isprintable()).strip()
    return name[: domain.MAX_FILENAME] or None


@programs_blp.url_value_preprocessor
def _upload_limit(endpoint: str | None, _values: Any) -> None:
    """Let the upload endpoints take bodies up to CHOPAY_MAX_UPLOAD_BYTES (before anything reads them)."""
    if endpoint in {"batches.Batches", "beneficiaries.import_beneficiaries"}:
        request.max_content_length = current_app.config["CHOPAY"].max_upload_bytes


beneficiaries_blp.url_value_preprocessor(_upload_limit)
batches_blp.url_value_preprocessor(_upload_limit)


# ---------------------------------------------------------------------------------------------
# Programs


def _program_view(program: Program, balance: int) -> dict[str, Any]:
    code = program.code
    return {
        **{c: getattr(program, c) for c in schemas.ProgramOut().fields if hasattr(program, c)},
        "budget_balance": balance,
        "accounts": {
            "budget": domain.budget_account(code),
            "funding": domain.funding_account(code),
            "benefits": domain.benefits_account(code),
        },
    }


@programs_blp.route("")
class Programs(MethodView):
    @auth.roles(*WRITERS)
    @idempotent
    @programs_blp.arguments(schemas.ProgramIn)
    @programs_blp.response(201, schemas.ProgramOut)
    @programs_blp.doc(parameters=[OPENAPI_PARAMETER])
    def post(self, data: dict[str, Any]) -> dict[str, Any]:
        """Create a program and open its budget, funding and benefits ledger accounts."""
        program = programs.create_program(db.session(), created_by=auth.current_user().id, **data)
        return _program_view(program, 0)

    @auth.roles(*READERS)
    @programs_blp.arguments(schemas.ProgramArgs, location="query")
    @programs_blp.response(200, schemas.ProgramPage)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """List programs with their budget balances, oldest first."""
        s = db.session()
        found = programs.list_programs(
            s, status=args.get("status"), after=decode_cursor(args["cursor"]), limit=args["limit"] + 1
        )
        shown = page(found, args["limit"])
        balances = programs.budgets(s, [p.code for p in shown["items"]])
        shown["items"] = [_program_view(p, balances.get(p.code, 0)) for p in shown["items"]]
        return shown


@programs_blp.route("/<program:code>")
class ProgramByCode(MethodView):
    @auth.roles(*READERS)
    @programs_blp.response(200, schemas.ProgramOut)
    def get(self, code: str) -> dict[str, Any]:
        """Get a program with its budget balance."""
        s = db.session()
        return _program_view(programs.get_program(s, code), programs.budget_balance(s, code))

    @auth.roles(*WRITERS)
    @programs_blp.arguments(schemas.ProgramPatch)
    @programs_blp.response(200, schemas.ProgramOut)
    def patch(self, data: dict[str, Any], code: str) -> dict[str, Any]:
        """Change a program's name, legal basis, amounts, source account or status."""
        s = db.session()
        return _program_view(programs.update_program(s, code, data), programs.budget_balance(s, code))


def _funding_view(funding: Funding, balance: int | None = None) -> dict[str, Any]:
    return {
        "id": funding.id,
        "reference": funding.reference,
        "amount": funding.amount,
        "transaction": public_id(funding.transaction_id),
        "created_at": funding.created_at,
        "budget_balance": balance,
    }


@programs_blp.route("/<program:code>/funding")
class ProgramFunding(MethodView):
    @auth.roles("admin")
    @idempotent
    @programs_blp.arguments(schemas.FundingIn)
    @programs_blp.response(201, schemas.FundingOut)
    @programs_blp.doc(parameters=[OPENAPI_PARAMETER])
    def post(self, data: dict[str, Any], code: str) -> dict[str, Any]:
        """Fund a program's budget: a ledger entry debiting its budget, crediting its funding."""
        s = db.session()
        funding = programs.fund(s, code, created_by=auth.current_user().id, **data)
        return _funding_view(funding, programs.budget_balance(s, code))

    @auth.roles(*READERS)
    @programs_blp.arguments(PageArgs, location="query")
    @programs_blp.response(200, schemas.FundingPage)
    def get(self, args: dict[str, Any], code: str) -> dict[str, Any]:
        """List a program's fundings, oldest first."""
        found = programs.list_fundings(
            db.session(), code, after=decode_cursor(args["cursor"]), limit=args["limit"] + 1
        )
        shown = page(found, args["limit"])
        shown["items"] = [_funding_view(f) for f in shown["items"]]
        return shown


@programs_blp.route("/<program:code>/enrolments")
class ProgramEnrolments(MethodView):
    @auth.roles(*WRITERS)
    @idempotent
    @programs_blp.arguments(schemas.EnrolmentIn)
    @programs_blp.response(201, schemas.EnrolmentOut)
    @programs_blp.doc(parameters=[OPENAPI_PARAMETER])
    def post(self, data: dict[str, Any], code: str) -> Enrolment:
        """Enrol a beneficiary (by national id or id) for a range of periods."""
        s = db.session()
        program = programs.get_program(s, code)
        beneficiary_id = data.pop("beneficiary_id", None)
        if national_id := data.pop("national_id", None):
            found = registry.find(s, data_keys(), national_id)
            if found is None:
                raise BeneficiaryNotFound("No beneficiary has this national id.")
            beneficiary_id = found.id
        return programs.enrol(s, program, beneficiary_id, created_by=auth.current_user().id, **data)

    @auth.roles(*READERS)
    @programs_blp.arguments(schemas.EnrolmentArgs, location="query")
    @programs_blp.response(200, schemas.EnrolmentPage)
    def get(self, args: dict[str, Any], code: str) -> dict[str, Any]:
        """List a program's enrolments, oldest first."""
        s = db.session()
        found = programs.list_enrolments(
            s,
            programs.get_program(s, code),
            beneficiary_id=args.get("beneficiary_id"),
            active_in=args.get("active_in"),
            after=decode_cursor(args["cursor"]),
            limit=args["limit"] + 1,
        )
        return page(found, args["limit"])


@programs_blp.route("/<program:code>/enrolments/<id:enrolment_id>/end", methods=["POST"])
@auth.roles(*WRITERS)
@programs_blp.arguments(schemas.EnrolmentEnd)
@programs_blp.response(200, schemas.EnrolmentOut)
def end_enrolment(data: dict[str, Any], code: str, enrolment_id: int) -> Enrolment:
    """End an enrolment: ``enrolled_to`` is its last period."""
    s = db.session()
    return programs.end_enrolment(s, programs.get_program(s, code), enrolment_id, data["enrolled_to"])


# ---------------------------------------------------------------------------------------------
# Beneficiaries


@beneficiaries_blp.route("")
class Beneficiaries(MethodView):
    @auth.roles(*WRITERS)
    @idempotent
    @beneficiaries_blp.arguments(schemas.BeneficiaryIn)
    @beneficiaries_blp.response(201, schemas.BeneficiaryOut)
    @beneficiaries_blp.doc(parameters=[OPENAPI_PARAMETER])
    def post(self, data: dict[str, Any]) -> dict[str, Any]:
        """Register a beneficiary; the CCCD must agree with the date of birth and gender."""
        keys = data_keys()
        return registry.view(
            keys, registry.create(db.session(), keys, data, created_by=auth.current_user().id)
        )

    @auth.roles(*READERS)
    @beneficiaries_blp.arguments(schemas.BeneficiaryArgs, location="query")
    @beneficiaries_blp.response(200, schemas.BeneficiaryPage)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """List beneficiaries; ``name`` matches ignoring case and diacritics."""
        limit = args.pop("limit")
        after = decode_cursor(args.pop("cursor"))
        shown = page(registry.search(db.session(), after=after, limit=limit + 1, **args), limit)
        keys = data_keys()
        shown["items"] = [registry.view(keys, b) for b in shown["items"]]
        return shown


@beneficiaries_blp.route("/lookup", methods=["POST"])
@auth.roles(*READERS)
@beneficiaries_blp.arguments(schemas.LookupIn)
@beneficiaries_blp.response(200, schemas.BeneficiaryOut)
def lookup(data: dict[str, Any]) -> dict[str, Any]:
    """Find the beneficiary with a national id (through its blind index)."""
    keys = data_keys()
    found = registry.find(db.session(), keys, data["national_id"])
    if found is None:
        raise BeneficiaryNotFound("No beneficiary has this national id.")
    return registry.view(keys, found)


@beneficiaries_blp.route("/import", methods=["POST"])
@auth.roles(*WRITERS)
@idempotent
@beneficiaries_blp.response(200, schemas.ImportReportOut)
@beneficiaries_blp.doc(
    parameters=[OPENAPI_PARAMETER],
    requestBody={
        "required": True,
        "content": {"multipart/form-data": {"schema": schemas.FileUpload}},
    },
)
def import_beneficiaries() -> imports.ImportReport:
    """Create, update and enrol beneficiaries from a CSV or XLSX file; answer a row-numbered report."""
    upload = _upload()
    return imports.import_file(db.session(), data_keys(), upload.stream, created_by=auth.current_user().id)


@beneficiaries_blp.route("/<id:beneficiary_id>")
class BeneficiaryById(MethodView):
    @auth.roles(*READERS)
    @beneficiaries_blp.response(200, schemas.BeneficiaryOut)
    def get(self, beneficiary_id: int) -> dict[str, Any]:
        """Get a beneficiary; personal values are masked."""
        return registry.view(data_keys(), registry.get(db.session(), beneficiary_id))

    @auth.roles(*WRITERS)
    @beneficiaries_blp.arguments(schemas.BeneficiaryPatch)
    @beneficiaries_blp.response(200, schemas.BeneficiaryOut)
    def patch(self, data: dict[str, Any], beneficiary_id: int) -> dict[str, Any]:
        """Change a beneficiary's record; the change is kept in its history."""
        s, keys = db.session(), data_keys()
        person = registry.get(s, beneficiary_id, lock=True)
        registry.update(s, keys, person, data, changed_by=auth.current_user().id)
        return registry.view(keys, person)


@beneficiaries_blp.route("/<id:beneficiary_id>/history")
@auth.roles(*READERS)
@beneficiaries_blp.arguments(PageArgs, location="query")
@beneficiaries_blp.response(200, schemas.ChangePage)
def history(args: dict[str, Any], beneficiary_id: int) -> dict[str, Any]:
    """List the changes of a beneficiary's record, oldest first."""
    found = registry.history(
        db.session(), beneficiary_id, after=decode_cursor(args["cursor"]), limit=args["limit"] + 1
    )
    return page(found, args["limit"])


@beneficiaries_blp.route("/<id:beneficiary_id>/payouts")
@auth.roles(*READERS)
@beneficiaries_blp.arguments(schemas.ItemArgs, location="query")
@beneficiaries_blp.response(200, schemas.ItemPage)
def payouts(args: dict[str, Any], beneficiary_id: int) -> dict[str, Any]:
    """List a person's payout items across batches."""
    return _items_page(args, beneficiary_id=beneficiary_id)


def _items_page(args: dict[str, Any], **where: Any) -> dict[str, Any]:
    s = db.session()
    found = reports.items(
        s, status=args.get("status"), after=decode_cursor(args["cursor"]), limit=args["limit"] + 1, **where
    )
    shown = page(found, args["limit"])
    codes = reports.program_codes(s, {i.program_id for i in shown["items"]})
    keys = data_keys()
    shown["items"] = [reports.item_view(keys, i, codes) for i in shown["items"]]
    return shown


# ---------------------------------------------------------------------------------------------
# Batches


def batch_view(batch: Batch, *, detail: bool) -> dict[str, Any]:
    """Return a batch as the API answers it (the batch page's progress uses the same view)."""
    s = db.session()
    program = s.get(Program, batch.program_id)
    view = {c: getattr(batch, c) for c in schemas.BatchOut().fields if hasattr(batch, c) and c != "program"}
    view["program"] = program.code if program else None
    view["approvals"] = batches.approvals(s, batch.id)
    view["approvals_required"] = current_app.config["CHOPAY"].approvals_required
    view["file_errors"] = reports.file_errors(s, batch.id)
    if detail:
        view["report"] = reports.summary(s, batch)
    return view


@batches_blp.route("")
class Batches(MethodView):
    @auth.roles(*WRITERS)
    @idempotent
    @batches_blp.response(202, schemas.BatchOut)
    @batches_blp.doc(
        parameters=[OPENAPI_PARAMETER],
        requestBody={
            "required": True,
            "content": {
                "application/json": {"schema": schemas.BatchJson},
                "multipart/form-data": {"schema": schemas.BatchUpload},
            },
        },
    )
    def post(self) -> tuple[dict[str, Any], dict[str, str]]:
        """Upload a payout batch, as JSON items or a CSV/XLSX file; it is validated in the background."""
        common: dict[str, Any] = {"created_by": auth.current_user().id}
        if request.mimetype == "application/json":
            data = _load(schemas.BatchJson(), request.get_json(silent=True), "json")
            common["items"] = data.pop("items")
        else:
            upload = _upload()
            data = _load(schemas.BatchForm(), request.form, "form")
            common |= {"stream": upload.stream, "filename": _filename(upload)}
        batch = batches.create(db.session(), data_keys(), **data, **common)
        return batch_view(batch, detail=False), {"Location": f"{batches_blp.url_prefix}/{batch.id}"}

    @auth.roles(*READERS)
    @batches_blp.arguments(schemas.BatchArgs, location="query")
    @batches_blp.response(200, schemas.BatchPage)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """List batches, newest first."""
        s = db.session()
        program_id = programs.get_program(s, args["program"]).id if args.get("program") else None
        found = batches.search(
            s,
            program_id=program_id,
            period=args.get("period"),
            status=args.get("status"),
            after=decode_cursor(args["cursor"]),
            limit=args["limit"] + 1,
        )
        shown = page(found, args["limit"])
        shown["items"] = [batch_view(b, detail=False) for b in shown["items"]]
        return shown


@batches_blp.route("/<id:batch_id>")
@auth.roles(*READERS)
@batches_blp.response(200, schemas.BatchOut)
def get_batch(batch_id: int) -> dict[str, Any]:
    """Get a batch with its counts and amounts per item status, per error code and per ward."""
    return batch_view(batches.get(db.session(), batch_id), detail=True)


@batches_blp.route("/<id:batch_id>/items")
@auth.roles(*READERS)
@batches_blp.arguments(schemas.ItemArgs, location="query")
@batches_blp.response(200, schemas.ItemPage)
def batch_items(args: dict[str, Any], batch_id: int) -> dict[str, Any]:
    """List a batch's payout items, optionally in one status."""
    batches.get(db.session(), batch_id)
    return _items_page(args, batch_id=batch_id)


@batches_blp.route("/<id:batch_id>/errors")
@auth.roles(*READERS)
@batches_blp.arguments(schemas.ErrorArgs, location="query")
@batches_blp.response(200, schemas.ErrorPage)
def batch_errors(args: dict[str, Any], batch_id: int) -> dict[str, Any]:
    """List a batch's errors: row, column, stable code and message (file-level ones have no row)."""
    s = db.session()
    batches.get(s, batch_id)
    found = reports.errors(
        s, batch_id, code=args.get("code"), after=decode_cursor(args["cursor"]), limit=args["limit"] + 1
    )
    return page(found, args["limit"])


@batches_blp.route("/<id:batch_id>/errors.csv")
@auth.roles(*READERS)
@batches_blp.response(200, {"type": "string"}, content_type="text/csv")
def batch_errors_csv(batch_id: int) -> Response:
    """Download a batch's error report as CSV: row, column, code, message."""
    return errors_download(batch_id)


def errors_download(batch_id: int) -> Response:
    """Answer a batch's errors.csv as a download (the API's and the batch page's)."""
    batches.get(db.session(), batch_id)
    return Response(
        stream_with_context(reports.errors_csv(db.session(), batch_id)),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="batch-{batch_id}-errors.csv"'},
    )


@batches_blp.route("/<id:batch_id>/approve", methods=["POST"])
@auth.roles("approver")
@batches_blp.arguments(schemas.ApproveIn)
@batches_blp.response(200, schemas.BatchOut)
def approve(data: dict[str, Any], batch_id: int) -> dict[str, Any]:
    """Approve a ready batch; the last approval needed fixes its items and their references."""
    batch = batches.approve(
        db.session(),
        batch_id,
        user_id=auth.current_user().id,
        exclude_invalid=data["exclude_invalid"],
        required=current_app.config["CHOPAY"].approvals_required,
    )
    return batch_view(batch, detail=True)


@batches_blp.route("/<id:batch_id>/reject", methods=["POST"])
@auth.roles("approver")
@batches_blp.arguments(schemas.RejectIn)
@batches_blp.response(200, schemas.BatchOut)
def reject(data: dict[str, Any], batch_id: int) -> dict[str, Any]:
    """Reject a batch awaiting approval, with a reason; its people can be put in another batch."""
    batch = batches.reject(db.session(), batch_id, user_id=auth.current_user().id, reason=data["reason"])
    return batch_view(batch, detail=True)


@batches_blp.route("/<id:batch_id>/pause", methods=["POST"])
@auth.roles(*CONTROLLERS)
@batches_blp.response(200, schemas.BatchOut)
def pause(batch_id: int) -> dict[str, Any]:
    """Pause a running batch: nothing new is sent; what is in flight still resolves."""
    return batch_view(controls.pause(db.session(), batch_id), detail=True)


@batches_blp.route("/<id:batch_id>/resume", methods=["POST"])
@auth.roles(*CONTROLLERS)
@batches_blp.response(200, schemas.BatchOut)
def resume(batch_id: int) -> dict[str, Any]:
    """Resume a paused batch (after funding the source account, for example)."""
    return batch_view(controls.resume(db.session(), batch_id), detail=True)


@batches_blp.route("/<id:batch_id>/cancel", methods=["POST"])
@auth.roles(*CONTROLLERS)
@batches_blp.arguments(schemas.CancelIn)
@batches_blp.response(200, schemas.BatchOut)
def cancel(data: dict[str, Any], batch_id: int) -> dict[str, Any]:
    """Cancel an approved, running or paused batch: unsent items are cancelled, sent ones resolve."""
    batch = controls.cancel(db.session(), batch_id, user_id=auth.current_user().id, reason=data["reason"])
    return batch_view(batch, detail=True)


@batches_blp.route("/<id:batch_id>/retry-failed", methods=["POST"])
@auth.roles(*CONTROLLERS)
@idempotent
@batches_blp.response(202, schemas.RetryOut)
@batches_blp.doc(parameters=[OPENAPI_PARAMETER])
def retry_failed(batch_id: int) -> dict[str, Any]:
    """Send again the failed items that can now succeed, each with a new reference linked to the first."""
    done = controls.retry_failed(db.session(), batch_id)
    return {**done, "batch": batch_view(done["batch"], detail=False)}


@batches_blp.route("/<id:batch_id>/report.csv")
@auth.roles(*READERS)
@batches_blp.response(200, {"type": "string"}, content_type="text/csv")
def batch_report_csv(batch_id: int) -> Response:
    """Download every item of a batch as CSV: status, bank transaction id, reason, attempts, receipt."""
    return report_download(batch_id)


def report_download(batch_id: int) -> Response:
    """Answer a batch's report.csv as a download (the API's and the batch page's)."""
    s = db.session()
    batches.get(s, batch_id)
    return Response(
        stream_with_context(reports.report_csv(s, data_keys(), batch_id)),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="batch-{batch_id}-report.csv"'},
    )


@batches_blp.route("/<id:batch_id>/precheck", methods=["POST"])
@auth.roles(*CONTROLLERS)
@batches_blp.response(202, schemas.BatchOut)
def request_precheck(batch_id: int) -> dict[str, Any]:
    """Pre-check a ready batch's destinations (closed, dormant, frozen, name mismatch) in the background."""
    batch = precheck.request(db.session(), batch_id, execution.rail())
    return batch_view(batch, detail=False)


@receipts_blp.route("/<receipt:code>")
@ratelimit.public
@receipts_blp.response(200, schemas.ReceiptOut)
@receipts_blp.doc(security=[])
def get_receipt(code: str) -> dict[str, Any]:
    """Check a payout receipt: the payment, and its ledger entry proven in the signed checkpoint."""
    return receipts.lookup(db.session(), data_keys(), code)

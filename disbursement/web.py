"""``/batches`` and ``/batches/{id}``: the welfare officer's and the approver's pages.

Officers (and admins) upload a batch file with its declared totals; everyone who may read
batches sees the validation report, row by row, and the counts and amounts per item status,
which the page refreshes from ``/batches/{id}/progress.json`` (the same JSON as
``GET /v1/batches/{id}``, read with the page's session). Approvers approve, saying explicitly
that the invalid rows are left out, or reject. Every write goes through the same services as
the API's, with the same rules (maker-checker, control totals).

Once approved, the same page follows the payout run to its end: a progress bar of the items
done, counts and amounts per status, items per second and the time left, all from the polled
JSON; officers, admins and approvers (the API's controllers) pause, resume or cancel it with
CSRF-protected forms, and everyone who may read it downloads ``report.csv``, every item with its
status, bank transaction id, reason and receipt code.
"""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import BooleanField, IntegerField, SelectField, StringField
from wtforms.validators import DataRequired, Length

from chopay import db, web
from chopay.crypto import data_keys
from chopay.errors import ChopayError
from disbursement import domain, schemas
from disbursement.api import CONTROLLERS, READERS, WRITERS, batch_view, errors_download, report_download
from disbursement.domain import BatchStatus
from disbursement.services import batches, controls, programs, reports

bp = Blueprint("disbursement_web", __name__, template_folder="templates")
NAV = [web.NavEntry("disbursement_web.batch_list", _l("Payout batches"), READERS)]
ERRORS_SHOWN = 2000
BATCHES_SHOWN = 50
STATUS_LABELS = {
    "validating": _l("validating"),
    "invalid": _l("invalid"),
    "ready": _l("awaiting approval"),
    "approved": _l("approved"),
    "running": _l("paying"),
    "paused": _l("paused"),
    "completed": _l("completed"),
    "completed_with_failures": _l("completed with failures"),
    "cancelled": _l("cancelled"),
    "pending": _l("pending"),
    "sending": _l("sending"),
    "paid": _l("paid"),
    "failed": _l("failed"),
}
ALERTS = {
    "paused": _l("Paused by an operator."),
    "insufficient_funds": _l(
        "The payout source account cannot cover the next transfers; fund it and resume the batch."
    ),
    "authentication_failed": _l(
        "The payout rail refused chopay's credentials; fix CHOPAY_PAYOUT_* and resume the batch."
    ),
}
"""Why a run paused, by the alert's code, in the page's language (the API's message is English)."""
FINAL = {
    BatchStatus.INVALID,
    BatchStatus.COMPLETED,
    BatchStatus.COMPLETED_WITH_FAILURES,
    BatchStatus.CANCELLED,
}


@bp.url_value_preprocessor
def _upload_limit(endpoint: str | None, _values: Any) -> None:
    """Let the upload take a file up to CHOPAY_MAX_UPLOAD_BYTES, as the API's upload does."""
    if endpoint == "disbursement_web.upload":
        request.max_content_length = current_app.config["CHOPAY"].max_upload_bytes


class UploadForm(FlaskForm):  # type: ignore[misc]
    program = SelectField(_l("Program"), validate_choice=False)
    period = StringField(_l("Period (YYYY-MM)"), validators=[DataRequired()])
    declared_count = IntegerField(_l("Declared number of rows"), validators=[DataRequired()])
    declared_total = IntegerField(_l("Declared total (đồng)"), validators=[DataRequired()])
    file = FileField(_l("File (CSV or XLSX)"), validators=[FileRequired()])


class ApproveForm(FlaskForm):  # type: ignore[misc]
    exclude_invalid = BooleanField()


class RejectForm(FlaskForm):  # type: ignore[misc]
    reason = StringField(_l("Reason"), validators=[DataRequired(), Length(max=domain.MAX_REASON)])


class ControlForm(FlaskForm):  # type: ignore[misc]
    """Pause or resume: nothing to fill in but the CSRF token."""


class CancelForm(FlaskForm):  # type: ignore[misc]
    reason = StringField(
        _l("Reason for cancelling"), validators=[DataRequired(), Length(max=domain.MAX_REASON)]
    )


RUN_STATUSES = {BatchStatus.APPROVED, BatchStatus.RUNNING, BatchStatus.PAUSED}
ITEM_STATUSES = {
    BatchStatus.APPROVED,
    BatchStatus.RUNNING,
    BatchStatus.PAUSED,
    BatchStatus.COMPLETED,
    BatchStatus.COMPLETED_WITH_FAILURES,
    BatchStatus.CANCELLED,
}


def _list(form: UploadForm, status: int = 200, problem: str | None = None) -> ResponseReturnValue:
    s = db.session()
    active = programs.list_programs(s, status=domain.ProgramStatus.ACTIVE, limit=500)
    form.program.choices = [(p.code, f"{p.code} · {p.name}") for p in active]
    before = request.args.get("before", "")
    if before and not (before.isascii() and before.isdigit() and len(before) <= 18):
        abort(404)
    found = batches.search(s, after=int(before) if before else None, limit=BATCHES_SHOWN + 1)
    older = found[BATCHES_SHOWN - 1].id if len(found) > BATCHES_SHOWN else None
    found = found[:BATCHES_SHOWN]
    codes = reports.program_codes(s, {b.program_id for b in found})
    user = web.current_user()
    may_upload = user is not None and user.role in WRITERS
    return (
        render_template(
            "disbursement/batches.html",
            form=form,
            batches=found,
            codes=codes,
            may_upload=may_upload,
            problem=problem,
            labels=STATUS_LABELS,
            older=older,
        ),
        status,
    )


@bp.get("/batches")
@web.requires(*READERS)
def batch_list() -> ResponseReturnValue:
    """List the latest batches; officers also get the upload form."""
    return _list(UploadForm())


@bp.post("/batches")
@web.requires(*WRITERS)
def upload() -> ResponseReturnValue:
    """Upload a batch file with its declared totals; it is validated in the background."""
    form = UploadForm()
    if not form.validate():
        return _list(form, 422)
    try:
        fields = schemas.BatchForm().load(
            {
                "program": form.program.data,
                "period": (form.period.data or "").strip(),
                "declared_count": form.declared_count.data,
                "declared_total": form.declared_total.data,
            }
        )
    except ma.ValidationError as exc:
        messages = exc.messages if isinstance(exc.messages, dict) else {"": exc.messages}
        for name, errors in messages.items():
            field = getattr(form, str(name), None)
            if field is not None:
                field.errors = [*field.errors, *errors]
        return _list(form, 422)
    user = web.current_user()
    assert user is not None
    upload = form.file.data
    try:
        batch = batches.create(
            db.session(),
            data_keys(),
            **fields,
            created_by=user.id,
            stream=upload.stream,
            filename=(upload.filename or "")[: domain.MAX_FILENAME] or None,
        )
    except ChopayError as exc:
        db.session().rollback()
        return _list(form, exc.status, exc.detail)
    flash(_("Batch %(id)s was uploaded; it is being validated.", id=batch.id), "ok")
    return redirect(url_for("disbursement_web.batch", batch_id=batch.id), code=303)


def _batch_json(batch_id: int) -> dict[str, Any]:
    # What GET /v1/batches/{id} answers, so the page shows what the API does.
    view: dict[str, Any] = schemas.BatchOut().dump(
        batch_view(batches.get(db.session(), batch_id), detail=True)
    )
    view["final"] = view["status"] in FINAL
    view["status_label"] = str(STATUS_LABELS.get(view["status"], view["status"]))
    view["by_status"] = {r["status"]: r for r in view["report"]["by_status"]}
    execution = view["report"]["execution"]
    alert: dict[str, Any] = execution.get("alert") or {}
    known = ALERTS.get(str(alert.get("code")))
    view["alert_text"] = str(known) if known is not None else alert.get("message")
    view["items_total"] = execution["done"] + execution["remaining"]
    view["percent_done"] = round(100 * execution["done"] / view["items_total"]) if view["items_total"] else 0
    return view


@bp.get("/batches/<id:batch_id>")
@web.requires(*READERS)
def batch(batch_id: int) -> ResponseReturnValue:
    """Show a batch: its totals, the validation report, progress per status and the approval."""
    s = db.session()
    view = _batch_json(batch_id)
    code = request.args.get("code") or None
    errors = reports.errors(s, batch_id, code=code, limit=ERRORS_SHOWN + 1)
    user = web.current_user()
    assert user is not None
    approved_by_me = any(a["user_id"] == user.id for a in view["approvals"]) if view["approvals"] else False
    may_approve = (
        user.role == "approver"
        and view["status"] == BatchStatus.READY
        and view["created_by"] != user.id
        and not approved_by_me
    )
    return render_template(
        "disbursement/batch.html",
        batch=view,
        record=batches.get(s, batch_id),
        labels=STATUS_LABELS,
        errors=errors[:ERRORS_SHOWN],
        more_errors=len(errors) > ERRORS_SHOWN,
        codes=[e["code"] for e in view["report"]["by_error"]],
        code=code,
        statuses=[s.value for s in domain.ItemStatus],
        may_approve=may_approve,
        approve_form=ApproveForm(),
        reject_form=RejectForm(),
        may_control=user.role in CONTROLLERS and view["status"] in RUN_STATUSES,
        has_items=view["status"] in ITEM_STATUSES,
        control_form=ControlForm(),
        cancel_form=CancelForm(),
    )


@bp.get("/batches/<id:batch_id>/progress.json")
@web.requires(*READERS)
def progress(batch_id: int) -> ResponseReturnValue:
    """Answer the batch's JSON for the page's progress display."""
    return jsonify(_batch_json(batch_id))


@bp.get("/batches/<id:batch_id>/errors.csv")
@web.requires(*READERS)
def errors_csv(batch_id: int) -> ResponseReturnValue:
    """Download the batch's validation report as CSV: row, column, code, message."""
    return errors_download(batch_id)


def _decided(batch_id: int, action: Any) -> ResponseReturnValue:
    user = web.current_user()
    assert user is not None
    try:
        action(user.id)
    except ChopayError as exc:
        db.session().rollback()
        flash(_("Nothing was changed: %(detail)s", detail=exc.detail), "error")
    return redirect(url_for("disbursement_web.batch", batch_id=batch_id), code=303)


@bp.post("/batches/<id:batch_id>/approve")
@web.requires("approver")
def approve(batch_id: int) -> ResponseReturnValue:
    """Approve a ready batch; invalid rows are left out only when the approver says so."""
    form = ApproveForm()
    required = current_app.config["CHOPAY"].approvals_required

    def act(user_id: int) -> None:
        batches.approve(
            db.session(),
            batch_id,
            user_id=user_id,
            exclude_invalid=bool(form.exclude_invalid.data),
            required=required,
        )
        flash(_("Your approval of batch %(id)s is recorded.", id=batch_id), "ok")

    return _decided(batch_id, act)


@bp.post("/batches/<id:batch_id>/reject")
@web.requires("approver")
def reject(batch_id: int) -> ResponseReturnValue:
    """Reject a batch awaiting approval, with a reason."""
    form = RejectForm()
    if not form.validate():
        flash(_("Give a reason for the rejection."), "error")
        return redirect(url_for("disbursement_web.batch", batch_id=batch_id), code=303)

    def act(user_id: int) -> None:
        batches.reject(db.session(), batch_id, user_id=user_id, reason=form.reason.data.strip())
        flash(_("Batch %(id)s was rejected.", id=batch_id), "ok")

    return _decided(batch_id, act)


@bp.get("/batches/<id:batch_id>/report.csv")
@web.requires(*READERS)
def report_csv(batch_id: int) -> ResponseReturnValue:
    """Download every item of the batch as CSV, as ``GET /v1/batches/{id}/report.csv`` does."""
    return report_download(batch_id)


def _controlled(batch_id: int, action: Any) -> ResponseReturnValue:
    batches.get(db.session(), batch_id)  # an unknown batch is the 404 page, not a message
    return _decided(batch_id, action)


@bp.post("/batches/<id:batch_id>/pause")
@web.requires(*CONTROLLERS)
def pause(batch_id: int) -> ResponseReturnValue:
    """Pause a running batch: nothing new is sent; what is in flight still resolves."""

    def act(_user_id: int) -> None:
        controls.pause(db.session(), batch_id)
        flash(_("Batch %(id)s is paused.", id=batch_id), "ok")

    return _controlled(batch_id, act)


@bp.post("/batches/<id:batch_id>/resume")
@web.requires(*CONTROLLERS)
def resume(batch_id: int) -> ResponseReturnValue:
    """Resume a paused batch."""

    def act(_user_id: int) -> None:
        controls.resume(db.session(), batch_id)
        flash(_("Batch %(id)s is running again.", id=batch_id), "ok")

    return _controlled(batch_id, act)


@bp.post("/batches/<id:batch_id>/cancel")
@web.requires(*CONTROLLERS)
def cancel(batch_id: int) -> ResponseReturnValue:
    """Cancel an approved, running or paused batch, with a reason: unsent items are not sent."""
    form = CancelForm()
    batches.get(db.session(), batch_id)
    if not form.validate():
        flash(_("Give a reason for cancelling."), "error")
        return redirect(url_for("disbursement_web.batch", batch_id=batch_id), code=303)

    def act(user_id: int) -> None:
        controls.cancel(db.session(), batch_id, user_id=user_id, reason=form.reason.data.strip())
        flash(_("Batch %(id)s was cancelled.", id=batch_id), "ok")

    return _controlled(batch_id, act)

"""``/audit``: the latest signed checkpoint, and a check that the log extends an older one."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template
from flask.typing import ResponseReturnValue
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import TextAreaField
from wtforms.validators import DataRequired, Length

from chopay import db, web
from payments.ledger import checks, keys

READERS = ("auditor", "admin")
bp = Blueprint("ledger_web", __name__, template_folder="templates")
NAV = [
    web.NavEntry("ledger_web.audit", _l("Audit"), READERS),
    web.NavEntry("reconciliation_web.reconciliations", _l("Reconciliations"), READERS),
]


class ConsistencyForm(FlaskForm):  # type: ignore[misc]
    note = TextAreaField(
        _l("An older checkpoint, as you kept it"),
        validators=[
            DataRequired(message=_l("Paste a checkpoint.")),
            Length(max=checks.MAX_NOTE_CHARS),
        ],
    )


def _render(
    form: ConsistencyForm, result: checks.Consistency | None = None, status: int = 200
) -> ResponseReturnValue:
    settings = current_app.config["CHOPAY"]
    s = db.session()
    verifiers = keys.trusted_verifiers(settings)
    latest = checks.latest(s, verifiers, settings.ledger_origin)
    return (
        render_template(
            "ledger/audit.html",
            latest=latest,
            form=form,
            result=result,
            verifier_keys=[v.vkey for v in verifiers],
        ),
        status,
    )


@bp.get("/audit")
@web.requires(*READERS)
def audit() -> ResponseReturnValue:
    """Show the latest checkpoint: size, root, signature and age."""
    return _render(ConsistencyForm())


@bp.post("/audit")
@web.requires(*READERS)
def check_consistency() -> ResponseReturnValue:
    """Check, with a consistency proof, that the log extends a pasted older checkpoint."""
    form = ConsistencyForm()
    if not form.validate():
        return _render(form, status=422)
    settings = current_app.config["CHOPAY"]
    result = checks.consistency(
        db.session(), keys.trusted_verifiers(settings), settings.ledger_origin, form.note.data
    )
    return _render(form, result, 200 if result.ok else 422)

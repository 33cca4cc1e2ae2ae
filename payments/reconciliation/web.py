"""``/audit/reconciliations``: the reconciliation list and a page per report, with decisions.

The decisions go through the same services as the API's (``services.decide`` and
``services.reverse_return``); a refused decision is shown on the report page and writes nothing.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_wtf import FlaskForm
from wtforms import HiddenField, StringField
from wtforms.validators import AnyOf, DataRequired, Length, Optional

from chopay import crypto, db, web
from chopay.errors import ChopayError
from payments.reconciliation import report, services
from payments.reconciliation.domain import Category
from payments.reconciliation.models import Total

READERS = ("auditor", "admin")
PAGE_ITEMS = 100
ACTIONS = ("confirm", "reject", "reverse")
bp = Blueprint("reconciliation_web", __name__, template_folder="templates")


class DecisionForm(FlaskForm):  # type: ignore[misc]
    action = HiddenField(validators=[AnyOf(ACTIONS)])
    note = StringField(validators=[Optional(), Length(max=services.MAX_NOTE)])


class ReverseForm(DecisionForm):
    note = StringField(validators=[DataRequired(), Length(max=services.MAX_NOTE)])


@bp.get("/audit/reconciliations")
@web.requires(*READERS)
def reconciliations() -> ResponseReturnValue:
    """List reconciliations, newest first."""
    found = services.list_reconciliations(db.session(), after=None, limit=1000)
    return render_template("reconciliation/list.html", reconciliations=list(reversed(found)))


def _int_arg(name: str) -> int | None:
    raw = request.args.get(name, "")
    if not raw:
        return None
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        abort(404)
    return int(raw)


@bp.get("/audit/reconciliations/<id:reconciliation_id>")
@web.requires(*READERS)
def reconciliation(reconciliation_id: int) -> ResponseReturnValue:
    """Show a report: the balance check, totals per category, items, and their decisions."""
    s = db.session()
    rec = services.get(s, reconciliation_id)
    category = request.args.get("category") or None
    if category is not None and category not in set(Category):
        abort(404)
    after = _int_arg("after")
    statement = services.statement_of(s, rec)
    totals = {t.category: t for t in s.query(Total).filter(Total.reconciliation_id == rec.id)}
    items: list[Any] = []
    more = False
    if rec.status == "done":
        items = report.page(s, rec, crypto.data_keys(), after=after, limit=PAGE_ITEMS + 1, category=category)
        more = len(items) > PAGE_ITEMS
        items = items[:PAGE_ITEMS]
    return render_template(
        "reconciliation/report.html",
        rec=rec,
        statement=statement,
        balance=report.balance_check(rec, statement),
        totals=totals,
        categories=list(Category),
        category=category,
        items=items,
        next_after=items[-1][0].position if more else None,
    )


@bp.post("/audit/reconciliations/<id:reconciliation_id>/items/<id:position>")
@web.requires(*READERS)
def decide(reconciliation_id: int, position: int) -> ResponseReturnValue:
    """Confirm or reject a suggested match, or reverse a returned payout."""
    form = DecisionForm() if request.form.get("action") != "reverse" else ReverseForm()
    back = url_for(
        "reconciliation_web.reconciliation",
        reconciliation_id=reconciliation_id,
        category=request.args.get("category") or None,
        _anchor=f"item-{position}",
    )
    if not form.validate():
        flash(_("Item %(position)s: give a reason of at most 500 characters.", position=position), "error")
        return redirect(back, code=303)
    user = web.current_user()
    assert user is not None
    s = db.session()
    try:
        if form.action.data == "reverse":
            services.reverse_return(s, reconciliation_id, position, user_id=user.id, reason=form.note.data)
        else:
            action = "confirmed" if form.action.data == "confirm" else "rejected"
            services.decide(
                s, reconciliation_id, position, action=action, user_id=user.id, note=form.note.data
            )
    except ChopayError as exc:
        s.rollback()
        flash(
            _("Item %(position)s was not changed: %(detail)s", position=position, detail=exc.detail), "error"
        )
        return redirect(back, code=303)
    flash(_("Item %(position)s: decision recorded.", position=position), "ok")
    return redirect(back, code=303)

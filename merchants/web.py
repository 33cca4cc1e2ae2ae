"""``/m/{id}``, ``/m/{id}/poster`` and ``/markets/{code}``: the vendor's and the campaign's pages.

* ``/m/{id}/poster``: the stall's printable A5 poster with the static VietQR as inline SVG.
* ``/m/{id}``: today's payments (the Vietnam day) and their total, kept live from
  ``/m/{id}/events``, and a form that opens a payment intent and shows its dynamic QR
  full-screen until it is paid.
* ``/markets`` and ``/markets/{code}``: the market-figures endpoint's figures, a chart of the
  payments per day drawn as SVG on the server, and the share of vendors accepting QR.

**Who opens a vendor's pages.** Officers and admins open every vendor's; a merchant user only
its own. Any other vendor's id answers the 404 page, as an id that does not exist does.

**The live stream of a page.** ``GET /v1/merchants/{id}/events`` stays what the API says: it
takes a bearer token, which a page never holds (the token is forgotten at sign-in).
``GET /m/{id}/events`` is the same Server-Sent Events stream (``merchants.intake.events``)
authorised by the page session instead, with the same visibility rule. It is a GET that
changes nothing, the session cookie is ``SameSite=Strict`` (another site's page cannot make
the browser send it), and no CORS header lets another origin read the answer. A page starts
the stream with ``?after=`` the last payment it shows, so nothing recorded between the page's
rendering and the stream's start is missed; reconnections send ``Last-Event-ID``.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from babel.numbers import format_percent
from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from markupsafe import Markup
from wtforms import DateField, IntegerField
from wtforms.validators import InputRequired, Optional, StopValidation

import qr
from chopay import db, web
from chopay.db import utcnow
from chopay.errors import ChopayError
from chopay.web import formats
from chopay.web.formats import LOCALE
from merchants import domain
from merchants.errors import MerchantNotFound
from merchants.intake import events, statements
from merchants.intake.models import Payment
from merchants.models import Merchant, PaymentIntent
from merchants.services import codes, intents, registry
from qr import render_svg

STAFF = ("officer", "admin")
VENDOR_PAGES = ("merchant", *STAFF)
FIGURE_DAYS = 30
MARKETS_SHOWN = 200
VENDORS_SHOWN = 500
_AFTER = re.compile(r"[0-9]{1,18}")

bp = Blueprint(
    "merchants_web",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/assets/merchants",
)
NAV = [
    web.NavEntry("merchants_web.mine", _l("My stall"), ("merchant",)),
    web.NavEntry("merchants_web.market_list", _l("Markets"), STAFF),
]
INTENT_LABELS = {
    "open": _l("Waiting for payment"),
    "paid": _l("Paid"),
    "underpaid": _l("Paid too little"),
    "overpaid": _l("Paid too much"),
    "expired": _l("Expired"),
    "cancelled": _l("Cancelled"),
}
MERCHANT_STATUS_LABELS = {
    "active": _l("active"),
    "suspended": _l("suspended"),
    "closed": _l("closed"),
}
KIND_LABELS = {
    "intent": _l("dynamic QR"),
    "static": _l("static QR"),
    "assigned": _l("assigned by an officer"),
}


def _merchant(merchant_id: str) -> Merchant:
    """Return the vendor if the signed-in user may open its pages; the 404 page otherwise."""
    try:
        return registry.get_visible(db.session(), merchant_id, user=web.current_user())
    except MerchantNotFound:
        abort(404)


def _bank_name(merchant: Merchant) -> str:
    found = qr.banks.by_bin(merchant.bin)
    return found.short_name if found is not None else merchant.bin


def _svg(payload: str, label: str) -> Markup:
    """Return a QR as inline SVG with an accessible name (the rendering escapes nothing: it is ours)."""
    svg = render_svg(payload, box_size=4)
    return Markup(svg.replace("<svg ", f'<svg role="img" aria-label="{Markup.escape(label)}" ', 1))


MAX_AMOUNT_CHARS = 32  # far beyond any amount; the range check says what is too large


def parse_amount(text: str) -> int | None:
    """Read an amount of whole đồng typed into the form: None when empty, ValueError unless ASCII digits."""
    text = text.strip()
    if not text:
        return None
    if not (text.isascii() and text.isdigit()) or len(text) > MAX_AMOUNT_CHARS:
        raise ValueError(text)
    return int(text)


class AmountField(IntegerField):  # type: ignore[misc]
    """Whole đồng, digits only; anything else is refused with a message in the page's language."""

    def process_formdata(self, valuelist: list[Any]) -> None:
        self.data = None
        if valuelist:
            try:
                self.data = parse_amount(str(valuelist[0]))
            except ValueError:
                raise ValueError(_l("Enter the amount as whole đồng, digits only.")) from None


def _amount_in_range(form: FlaskForm, field: AmountField) -> None:
    if field.process_errors:
        raise StopValidation()  # the field already says what is wrong
    if field.data is None or not domain.MIN_AMOUNT <= field.data <= domain.MAX_AMOUNT_DONG:
        raise StopValidation(
            _l(
                "The amount is %(min)s to %(max)s đồng.",
                min=formats.number(domain.MIN_AMOUNT),
                max=formats.number(domain.MAX_AMOUNT_DONG),
            )
        )


class IntentForm(FlaskForm):  # type: ignore[misc]
    amount = AmountField(
        _l("Amount (đồng)"),
        validators=[InputRequired(message=_l("Enter the amount in đồng.")), _amount_in_range],
    )


class PeriodForm(FlaskForm):  # type: ignore[misc]
    class Meta:
        csrf = False  # a GET form that changes nothing

    from_ = DateField(_l("From"), validators=[Optional()], name="from")
    to = DateField(_l("To"), validators=[Optional()])


# ---------------------------------------------------------------------------------------------
# The vendor's pages


@bp.get("/m")
@web.requires("merchant")
def mine() -> ResponseReturnValue:
    """Go to the signed-in vendor's own live page."""
    user = web.current_user()
    assert user is not None
    assert user.merchant_id is not None
    merchant = db.session().get(Merchant, user.merchant_id)
    if merchant is None:
        abort(404)
    return redirect(url_for("merchants_web.live", merchant_id=merchant.public_id), code=303)


@bp.get("/m/<merchant:merchant_id>/poster")
@web.requires(*VENDOR_PAGES)
def poster(merchant_id: str) -> ResponseReturnValue:
    """Show the stall's printable A5 poster: the static QR, the vendor and the account paid."""
    merchant = _merchant(merchant_id)
    try:
        codes.require_served(merchant)
    except ChopayError as exc:
        return web.error_page(410, exc.detail)
    payload = codes.static_payload(merchant)
    return render_template(
        "merchants/poster.html",
        merchant=merchant,
        bank=_bank_name(merchant),
        qr_svg=_svg(payload, merchant.display_name),
        payload=payload,
    )


def _today() -> dt.date:
    return statements.vietnam_day(utcnow())


@bp.get("/m/<merchant:merchant_id>")
@web.requires(*VENDOR_PAGES)
def live(merchant_id: str) -> ResponseReturnValue:
    """Show today's payments and total, kept live, and the form for a dynamic QR."""
    merchant = _merchant(merchant_id)
    return _live(merchant, IntentForm())


def _live(merchant: Merchant, form: IntentForm, status: int = 200) -> ResponseReturnValue:
    day = _today()
    found = statements.statement(db.session(), merchant, day)
    payments = sorted(found["payments"], key=lambda p: (p.occurred_at, p.id), reverse=True)
    # The stream starts after the newest payment of any day, so it replays nothing already past.
    last_id = db.session().scalar(
        sa.select(sa.func.max(Payment.id)).where(Payment.merchant_id == merchant.id)
    )
    return (
        render_template(
            "merchants/live.html",
            merchant=merchant,
            day=day,
            statement=found,
            payments=payments,
            last_id=last_id or 0,
            form=form,
            kinds=KIND_LABELS,
            labels=INTENT_LABELS,
            active=merchant.status == domain.MerchantStatus.ACTIVE,
        ),
        status,
    )


@bp.get("/m/<merchant:merchant_id>/events")
@web.requires(*VENDOR_PAGES)
def page_events(merchant_id: str) -> ResponseReturnValue:
    """Stream the vendor's payment.received events to its page, authorised by the page session."""
    merchant = _merchant(merchant_id)
    last = (request.headers.get("Last-Event-ID") or request.args.get("after") or "").strip() or None
    if last is not None and not _AFTER.fullmatch(last):
        return web.error_page(400)
    merchant_pk = merchant.id
    db.session().close()  # the stream is long: it holds no database connection
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    inbox = events.bus(app).subscribe(merchant_pk)
    if inbox is None:
        return Response("", status=503, headers={"Retry-After": "5"})
    body = events.stream(
        app,
        merchant_pk,
        inbox,
        int(last) if last is not None else None,
        app.config["CHOPAY"].events_stream_seconds,
    )
    return Response(
        body,
        mimetype="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        direct_passthrough=True,
    )


def _intent_json(merchant: Merchant, intent: PaymentIntent) -> dict[str, Any]:
    status = intents.effective_status(intent)
    return {
        "id": intent.public_id,
        "reference": intent.reference,
        "amount": intent.amount,
        "status": status,
        "status_label": str(INTENT_LABELS.get(status, status)),
        "paid": status in {"paid", "overpaid"},
        "final": status != "open",
        "expires_at": intent.expires_at.isoformat(),
        "page": url_for("merchants_web.intent", merchant_id=merchant.public_id, intent_id=intent.public_id),
        "status_url": url_for(
            "merchants_web.intent_status", merchant_id=merchant.public_id, intent_id=intent.public_id
        ),
    }


def _wants_json() -> bool:
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json"


@bp.post("/m/<merchant:merchant_id>/intents")
@web.requires(*VENDOR_PAGES)
def create_intent(merchant_id: str) -> ResponseReturnValue:
    """Open a payment intent for an amount; show its QR full-screen (JSON for the page's script)."""
    merchant = _merchant(merchant_id)
    form = IntentForm()
    if not form.validate():
        if _wants_json():
            return jsonify(errors={k: [str(m) for m in v] for k, v in form.errors.items()}), 422
        return _live(merchant, form, 422)
    user = web.current_user()
    assert user is not None
    amount = form.amount.data
    assert amount is not None  # validated: whole đồng within the bounds
    try:
        intent = intents.create_intent(db.session(), merchant, amount=amount, by=user.id)
    except ChopayError as exc:
        db.session().rollback()
        if _wants_json():
            return jsonify(errors={"amount": [exc.detail]}), exc.status
        form.amount.errors = [*form.amount.errors, exc.detail]
        return _live(merchant, form, exc.status)
    if _wants_json():
        view = _intent_json(merchant, intent)
        view["qr_svg"] = str(_svg(intent.payload, str(_l("Payment QR code"))))
        return jsonify(view), 201
    return redirect(view_url(merchant, intent), code=303)


def view_url(merchant: Merchant, intent: PaymentIntent) -> str:
    """Return the address of an intent's full-screen page."""
    return url_for("merchants_web.intent", merchant_id=merchant.public_id, intent_id=intent.public_id)


def _intent(merchant: Merchant, intent_id: str) -> PaymentIntent:
    try:
        return intents.get_intent(db.session(), merchant, intent_id)
    except ChopayError:
        abort(404)


@bp.get("/m/<merchant:merchant_id>/intents/<intent:intent_id>")
@web.requires(*VENDOR_PAGES)
def intent(merchant_id: str, intent_id: str) -> ResponseReturnValue:
    """Show a payment intent's dynamic QR full-screen until it is paid."""
    merchant = _merchant(merchant_id)
    found = _intent(merchant, intent_id)
    view = _intent_json(merchant, found)
    return render_template(
        "merchants/intent.html",
        merchant=merchant,
        intent=view,
        qr_svg=_svg(found.payload, str(_l("Payment QR code"))) if not view["final"] else None,
    )


@bp.get("/m/<merchant:merchant_id>/intents/<intent:intent_id>/status.json")
@web.requires(*VENDOR_PAGES)
def intent_status(merchant_id: str, intent_id: str) -> ResponseReturnValue:
    """Answer a payment intent's status, for its page's script."""
    merchant = _merchant(merchant_id)
    return jsonify(_intent_json(merchant, _intent(merchant, intent_id)))


# ---------------------------------------------------------------------------------------------
# Market figures


@bp.get("/markets")
@web.requires(*STAFF)
def market_list() -> ResponseReturnValue:
    """List the markets that have vendors, with their counts."""
    rows = db.session().execute(
        sa.select(
            Merchant.market_code,
            sa.func.max(Merchant.market_name),
            sa.func.count(Merchant.id),
        )
        .group_by(Merchant.market_code)
        .order_by(Merchant.market_code)
        .limit(MARKETS_SHOWN)
    )
    markets = [{"code": code, "name": name, "vendors": count} for code, name, count in rows]
    return render_template("merchants/markets.html", markets=markets)


@dataclass(frozen=True)
class Bar:
    """One day's bar of the chart, in the SVG's user units."""

    date: dt.date
    count: int
    value: int
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    top: int
    bottom: int
    left: int
    peak: int
    bars: list[Bar]
    ticks: list[tuple[float, int]]
    labels: list[tuple[float, str]]


def chart(days: list[dict[str, Any]], *, width: int = 720, height: int = 240) -> Chart:
    """Lay out a bar chart of the payments per day (counts), with a few round ticks."""
    left, top, bottom, right = 44, 12, 28, 8
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max((d["count"] for d in days), default=0)
    scale = _nice(peak)
    step = plot_w / max(len(days), 1)
    gap = min(2.0, step * 0.2)
    bars = []
    for i, d in enumerate(days):
        h = plot_h * d["count"] / scale if scale else 0.0
        bars.append(
            Bar(d["date"], d["count"], d["value"], left + i * step + gap / 2, top + plot_h - h, step - gap, h)
        )
    ticks = [(top + plot_h - plot_h * k / 4, scale * k // 4) for k in range(5)]
    every = max(1, len(days) // 6)
    labels = [
        (left + i * step + step / 2, d["date"].strftime("%d/%m"))
        for i, d in enumerate(days)
        if i % every == 0
    ]
    return Chart(width, height, top, bottom, left, peak, bars, ticks, labels)


def _nice(peak: int) -> int:
    """Return the smallest 1/2/5 x 10^n (and a multiple of 4) at least ``peak``, for the axis."""
    if peak <= 0:
        return 0
    magnitude = 1
    while True:
        for m in (1, 2, 5):
            if m * magnitude * 4 >= peak:
                return m * magnitude * 4
        magnitude *= 10


def percent(share: float) -> str:
    """Return a share as Vietnamese percent text, e.g. ``45,5%``."""
    return format_percent(share, "#,##0.#%", locale=LOCALE)


@bp.get("/markets/<ref:market_code>")
@web.requires(*STAFF)
def market(market_code: str) -> ResponseReturnValue:
    """Show a market's figures, the payments per day as an SVG chart and the share accepting QR."""
    s = db.session()
    vendors = s.scalars(
        sa.select(Merchant)
        .where(Merchant.market_code == market_code)
        .order_by(Merchant.stall, Merchant.id)
        .limit(VENDORS_SHOWN + 1)
    ).all()
    if not vendors:
        abort(404)
    form = PeriodForm(request.args)
    today = _today()
    problem = None
    last = form.to.data or today
    first = form.from_.data or (last - dt.timedelta(days=FIGURE_DAYS - 1))
    status = 200
    if not form.validate():
        problem, status = _l("Enter the dates as YYYY-MM-DD."), 422
        first, last = today - dt.timedelta(days=FIGURE_DAYS - 1), today
    else:
        try:
            statements.check_period(first, last, limit=statements.MAX_PERIOD_DAYS)
        except ChopayError as exc:
            problem, status = exc.detail, exc.status
            first, last = today - dt.timedelta(days=FIGURE_DAYS - 1), today
    figures = statements.market_figures(s, market_code, first, last)
    return (
        render_template(
            "merchants/market.html",
            code=market_code,
            name=vendors[0].market_name,
            figures=figures,
            share=percent(figures["qr_acceptance_share"]),
            chart=chart(figures["days"]),
            vendors=vendors[:VENDORS_SHOWN],
            more_vendors=len(vendors) > VENDORS_SHOWN,
            statuses=MERCHANT_STATUS_LABELS,
            form=form,
            first=first,
            last=last,
            problem=problem,
        ),
        status,
    )

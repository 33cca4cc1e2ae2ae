"""Sign-in, sign-out, the language switch and the start page."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, PasswordField, StringField
from wtforms.validators import AnyOf, DataRequired

from chopay import db
from chopay.auth import ANY_ROLE
from chopay.errors import Unauthorized
from chopay.users import authenticate
from chopay.web import LANGUAGES, current_user, navigation, requires, sessions

bp = Blueprint("web", __name__)


class LoginForm(FlaskForm):  # type: ignore[misc]
    token = PasswordField(_l("API token"), validators=[DataRequired(message=_l("Enter your token."))])
    next = HiddenField()


class LanguageForm(FlaskForm):  # type: ignore[misc]
    lang = StringField(_l("Language"), validators=[AnyOf(list(LANGUAGES))])
    next = HiddenField()


class LogoutForm(FlaskForm):  # type: ignore[misc]
    pass


def local_target(target: str | None, default: str) -> str:
    """Return ``target`` if it is a path on this site, else ``default`` (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    if any(c.isspace() or not c.isprintable() for c in target):
        return default  # nothing that could split a Location header or hide a host
    parts = urlsplit(target)
    return default if parts.scheme or parts.netloc else target


@bp.get("/")
@requires(*ANY_ROLE)
def home() -> ResponseReturnValue:
    """Show the pages the signed-in user may open."""
    return render_template("home.html", entries=navigation(current_user()))


@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    """Sign in with an API token; the browser keeps a session cookie, never the token."""
    form = LoginForm()
    if request.method == "GET":
        form.next.data = local_target(request.args.get("next"), "")
    error = None
    if form.validate_on_submit():
        try:
            user = authenticate(db.session(), (form.token.data or "").strip())
        except Unauthorized as exc:
            error = {
                "token_revoked": _l("This token has been revoked."),
                "token_malformed": _l("This is not a chopay token: it starts with cp_."),
            }.get(exc.code, _l("This token is not known."))
        else:
            sid = sessions.open_session(db.session(), user)
            lang = session.get("lang")
            session.clear()  # a new session id and CSRF secret: nothing from before sign-in carries over
            session["sid"] = sid
            if lang:
                session["lang"] = lang
            return redirect(local_target(form.next.data, url_for("web.home")), code=303)
    status = 401 if error else (400 if request.method == "POST" else 200)
    return render_template("login.html", form=form, error=error), status


@bp.post("/logout")
def logout() -> ResponseReturnValue:
    """Sign out: end the server-side session and forget the cookie."""
    LogoutForm()  # the CSRF token was checked before the view ran
    sid = session.get("sid")
    if isinstance(sid, str):
        sessions.close_session(db.session(), sid)
    session.clear()
    return redirect(url_for("web.login"), code=303)


@bp.post("/lang")
def language() -> ResponseReturnValue:
    """Switch the pages' language and go back to the page the switch was on."""
    form = LanguageForm()
    if form.validate():
        session["lang"] = form.lang.data
    return redirect(local_target(form.next.data, url_for("web.home")), code=303)

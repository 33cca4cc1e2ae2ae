"""Admin and test endpoints of the simulator (``/admin/...``), for demos and tests.

They are unauthenticated and answer plain JSON (``{"error", "message"}`` on failure): the
simulator listens on 127.0.0.1 by default and holds nothing but fake accounts.

=====================================================  ===========================================
``GET  /admin/accounts/{bin}/{number}``                holder name, status and balance
``PUT  /admin/accounts/{bin}/{number}``                create or reset an account
``POST /admin/fund``                                   ``{"amount"}``: credit the source account
``POST /admin/pay``                                    an incoming payment and its notification(s)
``GET  /admin/transfers?reference=R``                  money movements carrying R; ``count`` counts
                                                       payouts (must be 1), ``returned`` returns
``GET  /admin/transfers``                              totals over every payout movement
``POST /admin/payouts/{reference}/return``             return a paid transfer (state REVERSED)
``GET  /admin/statements/{bin}/{number}?from=&to=&format=csv|camt053|mt940``
``PUT  /admin/connectors/{name}``                      ``{"format", "secret", "url"?}``
``GET  /admin/connectors``                             configured connectors (secrets masked)
``GET  /admin/notifications[?transfer=FT...]``         delivery state of notifications
=====================================================  ===========================================
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import sqlalchemy as sa
from flask import Blueprint, Response, request

from chopay.db import utcnow
from payments.rails.fakebank import accounts as acct
from payments.rails.fakebank import config as cfg
from payments.rails.fakebank import incoming, payouts, statements
from payments.rails.fakebank import transfers as tf
from payments.rails.fakebank.app import bank
from payments.rails.fakebank.models import connectors
from payments.rails.fakebank.notify import deliveries
from payments.rails.fakebank.protocol import ProtocolError

admin = Blueprint("fakebank_admin", __name__, url_prefix="/admin")


def _json(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body, ensure_ascii=False), status=status, mimetype="application/json")


def _error(code: str, message: str, status: int = 400) -> Response:
    return _json({"error": code, "message": message}, status)


def _body() -> dict[str, Any]:
    try:
        body = json.loads(request.get_data() or b"{}")
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise ValueError("the body must be a JSON object")
    return body


def _int(body: dict[str, Any], name: str, default: int | None = None) -> int:
    value = body.get(name, default)
    if type(value) is not int:
        raise ValueError(f"{name}: must be an integer")
    return value


@admin.errorhandler(ValueError)
def _bad_value(exc: ValueError) -> Response:
    code = getattr(exc, "code", "invalid")
    status = 404 if code in ("account_not_found",) else 400
    return _error(str(code), str(exc), status)


@admin.errorhandler(ProtocolError)
def _protocol(exc: ProtocolError) -> Response:
    return _error({"05": "not_found"}.get(exc.code, "invalid"), exc.desc, exc.status)


@admin.get("/accounts/<bin_>/<number>")
def get_account(bin_: str, number: str) -> Response:
    """Return an account's holder name, status and balance."""
    with bank().engine.connect().execution_options(read_only=True) as conn, conn.begin():
        found = acct.get(conn, bin_, number)
    if found is None:
        return _error("account_not_found", f"no account {number} at {bin_}", 404)
    return _json(found.to_dict())


@admin.put("/accounts/<bin_>/<number>")
def put_account(bin_: str, number: str) -> Response:
    """Create an account, or reset its holder name, status and balance."""
    body = _body()
    with bank().engine.begin() as conn:
        found = acct.upsert(
            conn,
            bin_=bin_,
            number=number,
            holder_name=str(body.get("holder_name") or acct.fake_name(number)),
            status=str(body.get("status", "active")),
            balance=_int(body, "balance", 0),
        )
    return _json(found.to_dict())


@admin.post("/fund")
def fund() -> Response:
    """Credit the source account from outside (so that a paused batch can resume)."""
    amount = _int(_body(), "amount")
    if amount < 1:
        raise ValueError("amount: must be positive")
    with bank().engine.begin() as conn:
        source = acct.get(conn, cfg.SOURCE_BIN, cfg.SOURCE_NUMBER)
        external = acct.get(conn, cfg.EXTERNAL_BIN, cfg.EXTERNAL_NUMBER)
        assert source is not None
        assert external is not None
        (moved,) = tf.move_many(conn, [tf.Move("funding", external.id, source.id, amount, "FUNDING")])
        after = acct.get(conn, cfg.SOURCE_BIN, cfg.SOURCE_NUMBER)
    assert after is not None
    return _json({"transfer": tf.txn_id(moved), "balance": after.balance})


@admin.post("/pay")
def pay() -> Response:
    """Move money into an account and queue its notification(s) to chopay."""
    body = _body()
    payment = incoming.Payment(
        to_bin=str(body.get("to_bin", "")),
        to_account=str(body.get("to_account", "")),
        amount=_int(body, "amount"),
        memo=str(body.get("memo", ""))[:200],
        format=body.get("format"),
        connector=body.get("connector"),
        payer_name=body.get("payer_name", incoming.PAYER_NAME),
        code=body.get("code"),
        duplicate=_int(body, "duplicate", 0),
        late_s=_int(body, "late_s", 0),
        delay_s=float(body.get("delay_s", 0)),
    )
    b = bank()
    with b.engine.begin() as conn:
        result = incoming.pay(conn, payment, strict=b.config.strict_accounts, now=utcnow())
    b.deliverer.wake()
    return _json(result, 201)


@admin.get("/transfers")
def transfers() -> Response:
    """Count payout movements, for one reference or over everything."""
    unknown = set(request.args) - {"reference"}
    if unknown:
        raise ValueError(f"{sorted(unknown)[0]}: unknown query parameter")
    reference = request.args.get("reference")
    with bank().engine.connect().execution_options(read_only=True) as conn, conn.begin():
        if reference is None:
            return _json(tf.summary(conn))
        moved = tf.movements(conn, reference)
    return _json(
        {
            "reference": reference,
            "count": sum(1 for m in moved if m["kind"] == "payout"),
            "returned": sum(1 for m in moved if m["kind"] == "return"),
            "transfers": moved,
        }
    )


@admin.post("/payouts/<reference>/return")
def return_payout(reference: str) -> Response:
    """Return a paid transfer to the source: a credit line back, state REVERSED."""
    reason = str(_body().get("reason", "returned by the beneficiary bank"))
    with bank().engine.begin() as conn:
        return _json(payouts.return_transfer(conn, reference, reason, utcnow()))


@admin.get("/statements/<bin_>/<number>")
def statement(bin_: str, number: str) -> Response:
    """Export an account's statement as CSV, camt.053 or MT940."""
    fmt = request.args.get("format", "csv")
    if fmt not in statements.FORMATS:
        raise ValueError(f"format: must be one of {', '.join(statements.FORMATS)}")
    today = utcnow().astimezone(statements.VIETNAM).date()
    try:
        start = dt.date.fromisoformat(request.args.get("from", today.isoformat()))
        end = dt.date.fromisoformat(request.args.get("to", today.isoformat()))
    except ValueError:
        raise ValueError("from/to: must be dates YYYY-MM-DD") from None
    with bank().engine.connect().execution_options(read_only=True) as conn, conn.begin():
        try:
            found = statements.build(conn, bin_, number, start, end)
        except LookupError as exc:
            return _error("account_not_found", str(exc), 404)
    return Response(statements.render(found, fmt), mimetype=statements.MEDIA_TYPES[fmt])


@admin.put("/connectors/<name>")
def put_connector(name: str) -> Response:
    """Configure where and how a connector's notifications are delivered."""
    body = _body()
    connector = cfg.Connector(name, str(body.get("format")), str(body.get("secret") or ""), body.get("url"))
    if connector.format not in incoming.FORMATS or not connector.secret:
        raise ValueError("a connector needs a format (chopay, sepay, payos) and a secret")
    with bank().engine.begin() as conn:
        save_connector(conn, connector)
    return _json({"name": name, "format": connector.format, "url": connector.url})


def save_connector(conn: sa.Connection, connector: cfg.Connector) -> None:
    """Create or replace a connector."""
    conn.execute(connectors.delete().where(connectors.c.name == connector.name))
    conn.execute(
        connectors.insert().values(
            name=connector.name, format=connector.format, secret=connector.secret, url=connector.url
        )
    )


@admin.get("/connectors")
def list_connectors() -> Response:
    """List connectors, with their secrets masked."""
    with bank().engine.connect().execution_options(read_only=True) as conn, conn.begin():
        rows = conn.execute(sa.select(connectors).order_by(connectors.c.name))
        return _json(
            [{"name": r.name, "format": r.format, "secret": r.secret[:4] + "...", "url": r.url} for r in rows]
        )


@admin.get("/notifications")
def notifications() -> Response:
    """Show the delivery state of notifications, optionally of one incoming transfer."""
    txn = request.args.get("transfer")
    pk = None if txn is None else tf.transfer_pk(txn)
    if txn is not None and pk is None:
        raise ValueError("transfer: must be a bank transaction id FT...")
    return _json(deliveries(bank().engine, pk))

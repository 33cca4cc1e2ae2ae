"""Money paid into an account from outside, and the notification chopay will receive.

``pay`` credits the account from the external clearing account, then writes one outbox
row per delivery (``duplicate`` adds identical extra deliveries) in the same database
transaction, so a payment is never notified without having happened, nor lost. The
:class:`~payments.rails.fakebank.notify.Deliverer` of the running simulator posts them.

The notification's content per format (all built with :mod:`payments.rails.webhooks`):

* ``chopay``: ``bank_txn_id`` = the bank transaction id (``FT...``), ``bin``,
  ``account_number``, ``amount``, ``description`` = the memo, ``occurred_at``, ``payer_name``;
* ``sepay``: ``id`` = the movement's number, ``gateway`` = the bank's short name,
  ``referenceCode`` = the bank transaction id, ``content`` and ``description`` = the memo,
  ``accumulated`` = the balance after it, ``code`` = ``--code`` if given;
* ``payos``: ``orderCode`` = the movement's number, ``reference`` = the bank transaction id,
  ``description`` = the memo, ``counterAccount*`` = the payer.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from payments.rails import webhooks as wh
from payments.rails.fakebank import accounts as acct
from payments.rails.fakebank import config as cfg
from payments.rails.fakebank.models import connectors, notifications
from payments.rails.fakebank.transfers import Move, move_many, txn_id
from qr import bank_by_bin

FORMATS = ("chopay", "sepay", "payos")
PAYER_NAME = "NGUYEN VAN KHACH TEST"


class PayError(ValueError):
    """A payment the simulator refuses; ``code`` is stable."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Payment:
    """What ``chopay fakebank pay`` asks for."""

    to_bin: str
    to_account: str
    amount: int
    memo: str
    format: str | None = None
    connector: str | None = None
    payer_name: str | None = PAYER_NAME
    code: str | None = None
    duplicate: int = 0
    late_s: int = 0
    delay_s: float = 0.0


def choose_connector(conn: Connection, name: str | None, fmt: str | None) -> Any | None:
    """Return the connector to notify: by name, else the first of the format, else the only one."""
    rows = list(conn.execute(sa.select(connectors).order_by(connectors.c.name)))
    if name is not None:
        match = [r for r in rows if r.name == name]
        if not match:
            raise PayError("connector_unknown", f"no connector named {name!r} is configured")
        if fmt is not None and match[0].format != fmt:
            raise PayError("connector_format", f"connector {name!r} speaks {match[0].format}, not {fmt}")
        return match[0]
    if fmt is not None:
        match = [r for r in rows if r.format == fmt]
        if not match:
            raise PayError("connector_unknown", f"no {fmt} connector is configured")
        return match[0]
    if len(rows) > 1:
        names = ", ".join(r.name for r in rows)
        raise PayError("connector_ambiguous", f"several connectors are configured ({names}): name one")
    return rows[0] if rows else None


def pay(conn: Connection, payment: Payment, *, strict: bool, now: dt.datetime) -> dict[str, Any]:
    """Credit the account and queue its notifications; return what happened."""
    if type(payment.amount) is not int or not 1 <= payment.amount <= wh.MAX_AMOUNT:
        raise PayError("amount_invalid", f"amount must be an integer 1..{wh.MAX_AMOUNT} dong")
    if payment.format is not None and payment.format not in FORMATS:
        raise PayError("format_unknown", "format must be chopay, sepay or payos")
    if not 0 <= payment.duplicate <= 10:
        raise PayError("duplicate_invalid", "duplicate must be 0..10")
    connector = choose_connector(conn, payment.connector, payment.format)
    key = (payment.to_bin, payment.to_account)
    account = acct.resolve(conn, [key], strict=strict).get(key)
    if account is None:
        raise PayError("account_not_found", f"no account {payment.to_account} at {payment.to_bin}")
    if account.status != "active":
        raise PayError("account_" + account.status, f"the account is {account.status} and cannot be credited")
    external = acct.get(conn, cfg.EXTERNAL_BIN, cfg.EXTERNAL_NUMBER)
    assert external is not None
    (transfer_id,) = move_many(
        conn,
        [Move("incoming", external.id, account.id, payment.amount, payment.memo, None, payment.payer_name)],
        at=now,
    )
    balance = acct.get(conn, *key)
    assert balance is not None
    result: dict[str, Any] = {
        "transfer": txn_id(transfer_id),
        "bin": account.bin,
        "account_number": account.number,
        "amount": payment.amount,
        "balance": balance.balance,
        "notifications": [],
        "connector": None,
        "format": None,
    }
    if connector is None:
        return result
    payload = _payload(connector.format, transfer_id, account, payment, balance.balance, now)
    rows = [
        {
            "transfer_id": transfer_id,
            "connector": connector.name,
            "format": connector.format,
            "body": payload,
            "late_s": payment.late_s,
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now + dt.timedelta(seconds=payment.delay_s),
        }
        for _ in range(1 + payment.duplicate)
    ]
    conn.execute(notifications.insert(), rows)
    ids = conn.execute(
        sa.select(notifications.c.id)
        .where(notifications.c.transfer_id == transfer_id)
        .order_by(notifications.c.id)
    )
    result.update(notifications=[r.id for r in ids], connector=connector.name, format=connector.format)
    return result


def _payload(
    fmt: str, transfer_id: int, account: acct.Account, payment: Payment, balance: int, now: dt.datetime
) -> bytes:
    txn = txn_id(transfer_id)
    if fmt == "chopay":
        return wh.ChopayNotification(
            bank_txn_id=txn,
            bin=account.bin,
            account_number=account.number,
            amount=payment.amount,
            description=payment.memo,
            occurred_at=now.astimezone(wh.VIETNAM).replace(microsecond=0),
            payer_name=payment.payer_name,
        ).to_json()
    bank = bank_by_bin(account.bin)
    if fmt == "sepay":
        return wh.SepayNotification(
            id=transfer_id,
            gateway=bank.short_name if bank else account.bin,
            transaction_date=now,
            account_number=account.number,
            code=payment.code,
            content=payment.memo,
            transfer_type="in",
            transfer_amount=payment.amount,
            accumulated=balance,
            sub_account=None,
            reference_code=txn,
            description=payment.memo,
        ).to_json()
    payer_bank = bank_by_bin(cfg.EXTERNAL_BIN)
    note = wh.PayosNotification(
        order_code=transfer_id,
        amount=payment.amount,
        description=payment.memo,
        account_number=account.number,
        reference=txn,
        transaction_date_time=now,
        currency="VND",
        payment_link_id=f"{transfer_id:032x}",
        code="00",
        desc="success",
        counter_account_bank_id=cfg.EXTERNAL_BIN,
        counter_account_bank_name=payer_bank.short_name if payer_bank else "",
        counter_account_name=payment.payer_name,
        counter_account_number=cfg.EXTERNAL_NUMBER,
        virtual_account_name="",
        virtual_account_number="",
    )
    return json.dumps(note.to_data(), ensure_ascii=False, separators=(",", ":")).encode("utf-8")

"""Account statements for a date range, as CSV, camt.053.001.08 or MT940.

A statement covers whole Vietnam-time days, ``from`` to ``to`` inclusive. Its opening
balance is the balance before its first day and its closing balance the balance after its
last, so opening + the lines' amounts = closing, always. Lines are money movements of the
account, oldest first; each carries the bank transaction id as its ``line_id``.

* **CSV** (UTF-8): ``line_id,booking_date,value_date,amount,currency,balance,reference,
  description``; ``amount`` is signed (positive = into the account), ``balance`` the running
  balance after the line; a returned payout is a positive line whose ``reference`` is the
  payout's and whose description starts ``RETURN``.
* **camt.053.001.08**: ``Ntry/NtryRef`` and ``AcctSvcrRef`` = line_id,
  ``NtryDtls/TxDtls/Refs/EndToEndId`` = reference (``NOTPROVIDED`` when there is none, as
  ISO 20022 requires a value), ``RmtInf/Ustrd`` = description, balances ``OPBD``/``CLBD``.
* **MT940** (written with ``mt940-writer``): ``:61:`` customer reference = reference (or
  ``NONREF``), bank reference after ``//`` = line_id, ``:86:`` = description transliterated
  to ASCII (the SWIFT character set has no Vietnamese letters) in lines of 65 characters;
  ``:60F:``/``:62F:`` balances. Amounts are whole dong written ``500000,00``.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import textwrap
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any

import mt940_writer as mtw
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from chopay.db import utcnow
from payments.rails.fakebank import accounts as acct
from payments.rails.fakebank.models import accounts, transfers
from payments.rails.fakebank.transfers import txn_id
from payments.rails.webhooks import VIETNAM
from qr.text import to_ascii

__all__ = ["FORMATS", "MEDIA_TYPES", "VIETNAM", "Line", "Statement", "build", "render"]

FORMATS = ("csv", "camt053", "mt940")
CSV_HEADER = (
    "line_id",
    "booking_date",
    "value_date",
    "amount",
    "currency",
    "balance",
    "reference",
    "description",
)
CAMT_NS = "urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"
MEDIA_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "camt053": "application/xml",
    "mt940": "text/plain; charset=us-ascii",
}


@dataclass(frozen=True)
class Line:
    """One statement line."""

    line_id: str
    booked: dt.date
    amount: int
    balance: int
    reference: str
    description: str
    kind: str


@dataclass(frozen=True)
class Statement:
    """The lines and balances of one account over a range of days."""

    account: acct.Account
    start: dt.date
    end: dt.date
    opening: int
    closing: int
    lines: list[Line]


def _bounds(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=VIETNAM).astimezone(dt.UTC)


def build(conn: Connection, bin_: str, number: str, start: dt.date, end: dt.date) -> Statement:
    """Read the statement of an account for ``start``..``end`` (Vietnam dates, inclusive)."""
    if end < start:
        raise ValueError("to must not be before from")
    account = acct.get(conn, bin_, number)
    if account is None:
        raise LookupError(f"no account {number} at {bin_}")
    lo, hi = _bounds(start), _bounds(end + dt.timedelta(days=1))
    mine = sa.or_(transfers.c.from_account == account.id, transfers.c.to_account == account.id)
    before = conn.execute(
        sa.select(transfers).where(mine, transfers.c.booked_at < lo).order_by(transfers.c.id.desc()).limit(1)
    ).one_or_none()
    opening = _side(before, account.id)[1] if before is not None else _first_opening(conn, account)
    lines = []
    rows = conn.execute(
        sa.select(transfers)
        .where(mine, transfers.c.booked_at >= lo, transfers.c.booked_at < hi)
        .order_by(transfers.c.id)
    )
    for r in rows:
        amount, balance = _side(r, account.id)
        lines.append(
            Line(
                line_id=txn_id(r.id),
                booked=r.booked_at.astimezone(VIETNAM).date(),
                amount=amount,
                balance=balance,
                reference=r.reference or "",
                description=r.description,
                kind=r.kind,
            )
        )
    closing = lines[-1].balance if lines else opening
    return Statement(account, start, end, opening, closing, lines)


def _first_opening(conn: Connection, account: acct.Account) -> int:
    value = conn.execute(sa.select(accounts.c.opening_balance).where(accounts.c.id == account.id)).scalar()
    return int(value or 0)


def _side(row: Any, account_id: int) -> tuple[int, int]:
    if row.to_account == account_id:
        return row.amount, row.to_balance
    return -row.amount, row.from_balance


def render(statement: Statement, fmt: str) -> str:
    """Render a statement in one of :data:`FORMATS`."""
    if fmt == "csv":
        return to_csv(statement)
    if fmt == "camt053":
        return to_camt053(statement)
    if fmt == "mt940":
        return to_mt940(statement)
    raise ValueError(f"format must be one of {', '.join(FORMATS)}")


def to_csv(statement: Statement) -> str:
    """Render as the shared CSV."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    for line in statement.lines:
        day = line.booked.isoformat()
        writer.writerow(
            [line.line_id, day, day, line.amount, "VND", line.balance, line.reference, line.description]
        )
    return out.getvalue()


def _el(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    node = ET.SubElement(parent, tag, attrs)
    if text is not None:
        node.text = text
    return node


def _balance(stmt: ET.Element, code: str, amount: int, day: dt.date) -> None:
    bal = _el(stmt, "Bal")
    _el(_el(_el(bal, "Tp"), "CdOrPrtry"), "Cd", code)
    _el(bal, "Amt", str(abs(amount)), Ccy="VND")
    _el(bal, "CdtDbtInd", "CRDT" if amount >= 0 else "DBIT")
    _el(_el(bal, "Dt"), "Dt", day.isoformat())


def to_camt053(statement: Statement) -> str:
    """Render as an ISO 20022 camt.053.001.08 bank-to-customer statement."""
    now = utcnow().astimezone(VIETNAM).replace(microsecond=0).isoformat()
    # Max35Text: FB, the BIN, the account number's last 13 characters and the two dates fit.
    period = f"{statement.start:%y%m%d}{statement.end:%y%m%d}"
    ident = f"FB{statement.account.bin}{statement.account.number[-13:]}{period}"
    doc = ET.Element("Document", xmlns=CAMT_NS)
    root = _el(doc, "BkToCstmrStmt")
    header = _el(root, "GrpHdr")
    _el(header, "MsgId", ident)
    _el(header, "CreDtTm", now)
    stmt = _el(root, "Stmt")
    _el(stmt, "Id", ident)
    _el(stmt, "CreDtTm", now)
    span = _el(stmt, "FrToDt")
    _el(span, "FrDtTm", dt.datetime.combine(statement.start, dt.time(), VIETNAM).isoformat())
    _el(span, "ToDtTm", dt.datetime.combine(statement.end, dt.time(23, 59, 59), VIETNAM).isoformat())
    account = _el(stmt, "Acct")
    _el(_el(_el(account, "Id"), "Othr"), "Id", statement.account.number)
    _el(account, "Ccy", "VND")
    _el(account, "Nm", statement.account.holder_name)
    member = _el(_el(_el(account, "Svcr"), "FinInstnId"), "ClrSysMmbId")
    _el(member, "MmbId", statement.account.bin)
    _balance(stmt, "OPBD", statement.opening, statement.start)
    _balance(stmt, "CLBD", statement.closing, statement.end)
    for line in statement.lines:
        entry = _el(stmt, "Ntry")
        _el(entry, "NtryRef", line.line_id)
        _el(entry, "Amt", str(abs(line.amount)), Ccy="VND")
        _el(entry, "CdtDbtInd", "CRDT" if line.amount > 0 else "DBIT")
        _el(_el(entry, "Sts"), "Cd", "BOOK")
        _el(_el(entry, "BookgDt"), "Dt", line.booked.isoformat())
        _el(_el(entry, "ValDt"), "Dt", line.booked.isoformat())
        _el(entry, "AcctSvcrRef", line.line_id)
        domain = _el(_el(entry, "BkTxCd"), "Domn")
        _el(domain, "Cd", "PMNT")
        fmly = _el(domain, "Fmly")
        _el(fmly, "Cd", "RCDT" if line.amount > 0 else "ICDT")
        _el(fmly, "SubFmlyCd", "RRTN" if line.kind == "return" else "DMCT")
        details = _el(_el(entry, "NtryDtls"), "TxDtls")
        _el(_el(details, "Refs"), "EndToEndId", line.reference or "NOTPROVIDED")
        _el(_el(details, "RmtInf"), "Ustrd", line.description[:140])
    ET.indent(doc)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(doc, encoding="unicode") + "\n"


def _swift_text(text: str) -> str:
    allowed = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/-?:().,'+ ")
    return "".join(c if c in allowed else " " for c in to_ascii(text))


def to_mt940(statement: Statement) -> str:
    """Render as a SWIFT MT940 customer statement."""
    transactions = []
    for line in statement.lines:
        kind = mtw.TransactionType.returned_item if line.kind == "return" else mtw.TransactionType.transfer
        narrative = f"{(line.reference or 'NONREF')[:16]}//{line.line_id}"
        info = "\n".join(textwrap.wrap(_swift_text(line.description), 65)[:6]) or "NONE"
        transactions.append(
            mtw.Transaction(line.booked, line.amount, kind, narrative, mtw.TransactionAdditionalInfo(info))
        )
    body = mtw.Statement(
        f"FB{statement.end:%y%m%d}{statement.account.number[-6:]}"[:16],
        f"{statement.account.bin}/{statement.account.number}",
        "00001/001",
        mtw.Balance(statement.opening, statement.start, "VND"),
        mtw.Balance(statement.closing, statement.end, "VND"),
        transactions,
    )
    return str(body) + "\n"

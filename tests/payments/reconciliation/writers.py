"""Write statements in each supported format, for tests and benchmarks."""

from __future__ import annotations

import csv
import datetime as dt
import io
import unicodedata
from collections.abc import Sequence
from xml.sax.saxutils import escape

import mt940_writer

from payments.reconciliation.statements import StatementLine

CAMT_NS = {
    "02": "urn:iso:std:iso:20022:tech:xsd:camt.053.001.02",
    "08": "urn:iso:std:iso:20022:tech:xsd:camt.053.001.08",
}
SIMULATOR_HEADER = [
    "line_id",
    "booking_date",
    "value_date",
    "amount",
    "currency",
    "balance",
    "reference",
    "description",
]


def line(
    line_id: str,
    day: dt.date,
    amount: int,
    reference: str = "",
    description: str = "",
    *,
    value_date: dt.date | None = None,
) -> StatementLine:
    """Return a statement line with ``source`` left empty (writers do not use it)."""
    return StatementLine(line_id, day, value_date or day, amount, reference, description, "")


def cleaned(text: str) -> str:
    """Return bank text as the importers store it: NFC, whitespace runs made single spaces."""
    return unicodedata.normalize("NFC", " ".join(text.split()))


def simulator_csv(lines: Sequence[StatementLine], opening: int, *, newline: str = "\n") -> bytes:
    """Return the bank simulator's CSV export of ``lines``."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator=newline)
    writer.writerow(SIMULATOR_HEADER)
    balance = opening
    for x in lines:
        balance += x.amount
        writer.writerow(
            [x.line_id, x.booking_date, x.value_date, x.amount, "VND", balance, x.reference, x.description]
        )
    return out.getvalue().encode()


def _amount(value: int) -> tuple[str, str]:
    return str(abs(value)), "CRDT" if value >= 0 else "DBIT"


def _balance(code: str, value: int, day: dt.date) -> str:
    amount, mark = _amount(value)
    return (
        f'<Bal><Tp><CdOrPrtry><Cd>{code}</Cd></CdOrPrtry></Tp><Amt Ccy="VND">{amount}</Amt>'
        f"<CdtDbtInd>{mark}</CdtDbtInd><Dt><Dt>{day}</Dt></Dt></Bal>"
    )


def camt_entry(x: StatementLine, version: str = "02", *, currency: str = "VND") -> str:
    """Return one Ntry element."""
    amount, mark = _amount(x.amount)
    status = "<Sts>BOOK</Sts>" if version == "02" else "<Sts><Cd>BOOK</Cd></Sts>"
    reversal = "<RvslInd>true</RvslInd>" if x.reversal else ""
    refs = f"<Refs><EndToEndId>{escape(x.reference)}</EndToEndId></Refs>" if x.reference else ""
    info = f"<RmtInf><Ustrd>{escape(x.description)}</Ustrd></RmtInf>" if x.description else ""
    return (
        f'<Ntry><NtryRef>{escape(x.line_id)}</NtryRef><Amt Ccy="{currency}">{amount}</Amt>'
        f"<CdtDbtInd>{mark}</CdtDbtInd>{reversal}{status}<BookgDt><Dt>{x.booking_date}</Dt></BookgDt>"
        f"<ValDt><Dt>{x.value_date}</Dt></ValDt><AcctSvcrRef>{escape(x.line_id)}</AcctSvcrRef>"
        f"<BkTxCd/><NtryDtls><TxDtls>{refs}{info}</TxDtls></NtryDtls></Ntry>\n"
    )


def camt_stmt(
    lines: Sequence[StatementLine],
    opening: int,
    *,
    version: str = "02",
    period: tuple[dt.date, dt.date] | None = None,
    account: str = "0123456789",
    number: int = 1,
    closing: int | None = None,
) -> str:
    """Return one Stmt element."""
    start, end = period or (
        lines[0].booking_date if lines else dt.date(2026, 11, 1),
        lines[-1].booking_date if lines else dt.date(2026, 11, 30),
    )
    close = opening + sum(x.amount for x in lines) if closing is None else closing
    entries = "".join(camt_entry(x, version) for x in lines)
    return (
        f"<Stmt><Id>STMT-{number}</Id><CreDtTm>{end}T23:59:00+07:00</CreDtTm>"
        f"<FrToDt><FrDtTm>{start}T00:00:00+07:00</FrDtTm><ToDtTm>{end}T23:59:59+07:00</ToDtTm></FrToDt>"
        f"<Acct><Id><Othr><Id>{account}</Id></Othr></Id><Ccy>VND</Ccy></Acct>\n"
        f"{_balance('OPBD', opening, start)}{_balance('CLBD', close, end)}\n{entries}</Stmt>"
    )


def camt053(
    lines: Sequence[StatementLine],
    opening: int,
    *,
    version: str = "02",
    period: tuple[dt.date, dt.date] | None = None,
    closing: int | None = None,
) -> bytes:
    """Return a camt.053 document with one statement."""
    return camt_document(camt_stmt(lines, opening, version=version, period=period, closing=closing), version)


def camt_document(body: str, version: str = "02") -> bytes:
    """Wrap Stmt elements in a camt.053 Document."""
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<Document xmlns="{CAMT_NS[version]}"><BkToCstmrStmt>'
        f"<GrpHdr><MsgId>MSG-1</MsgId><CreDtTm>2026-12-01T00:00:00+07:00</CreDtTm></GrpHdr>\n"
        f"{body}</BkToCstmrStmt></Document>\n"
    ).encode()


def mt940(
    lines: Sequence[StatementLine],
    opening: int,
    *,
    period: tuple[dt.date, dt.date] | None = None,
    reference: str = "STMT-1",
    closing: int | None = None,
) -> bytes:
    """Return an MT940 statement written with mt940-writer."""
    start, end = period or (lines[0].booking_date, lines[-1].booking_date)
    transactions = [
        mt940_writer.Transaction(
            x.booking_date,
            x.amount,
            mt940_writer.TransactionType.transfer,
            f"{x.reference or 'NONREF'}//{x.line_id}",
            mt940_writer.TransactionAdditionalInfo(x.description),
        )
        for x in lines
    ]
    close = opening + sum(x.amount for x in lines) if closing is None else closing
    statement = mt940_writer.Statement(
        reference,
        mt940_writer.Account("0123456789", "970436"),
        "1/1",
        mt940_writer.Balance(opening, start, "VND"),
        mt940_writer.Balance(close, end, "VND"),
        transactions,
    )
    return (str(statement) + "\n").encode()

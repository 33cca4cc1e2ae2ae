"""Bank statements: a typed, immutable model and importers for CSV, camt.053 and MT940.

>>> statement = parse_statement(open("statement.xml", "rb"), StatementFormat.CAMT053)  # doctest: +SKIP

Every importer streams its input and validates it completely (see :mod:`.model`); a bad file
raises a :class:`payments.reconciliation.errors.StatementError` that lists every problem
with its location. Nothing here touches a database, Flask or the network.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import BinaryIO

from payments.reconciliation.statements.camt053 import read_camt053
from payments.reconciliation.statements.csv_statement import (
    BANK_SIMULATOR,
    PRESETS,
    SEPAY,
    CsvMapping,
    read_csv,
)
from payments.reconciliation.statements.model import MAX_LINES, Statement, StatementLine, StatementLines
from payments.reconciliation.statements.mt940_statement import read_mt940

__all__ = [
    "BANK_SIMULATOR",
    "MAX_LINES",
    "PRESETS",
    "SEPAY",
    "CsvMapping",
    "Statement",
    "StatementFormat",
    "StatementLine",
    "StatementLines",
    "parse_statement",
    "read_camt053",
    "read_csv",
    "read_mt940",
    "sniff_format",
]


class StatementFormat(enum.StrEnum):
    CSV = "csv"
    CAMT053 = "camt053"
    MT940 = "mt940"


def parse_statement(
    stream: BinaryIO,
    format: StatementFormat | str,
    *,
    mapping: CsvMapping | str = BANK_SIMULATOR,
    account: str | None = None,
    period: tuple[dt.date, dt.date] | None = None,
    opening_balance: int | None = None,
    closing_balance: int | None = None,
) -> Statement:
    """Read and validate a statement in ``format`` from a binary stream.

    ``mapping`` (a :class:`CsvMapping` or a preset name), ``account``, ``period`` and the
    balances apply to CSV only, whose files do not carry them all.
    """
    kind = StatementFormat(format)
    if kind is StatementFormat.CAMT053:
        return read_camt053(stream)
    if kind is StatementFormat.MT940:
        return read_mt940(stream)
    chosen = PRESETS[mapping] if isinstance(mapping, str) else mapping
    return read_csv(
        stream,
        chosen,
        account=account,
        period=period,
        opening_balance=opening_balance,
        closing_balance=closing_balance,
    )


def sniff_format(head: bytes) -> StatementFormat:
    """Guess a statement's format from its first bytes: XML, SWIFT tags, or else CSV."""
    text = head.removeprefix(b"\xef\xbb\xbf").lstrip()
    if text.startswith(b"<"):
        return StatementFormat.CAMT053
    if text.startswith((b":20:", b"{1:", b":13D:")):
        return StatementFormat.MT940
    return StatementFormat.CSV

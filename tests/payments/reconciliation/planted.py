"""A statement with one discrepancy of each kind, and the ledger postings it is matched against."""

from __future__ import annotations

import datetime as dt

from payments.reconciliation.domain import Category
from tests.payments.reconciliation.conftest import SALES, Book
from tests.payments.reconciliation.writers import camt053, line, mt940, simulator_csv

D0, D1, D2, D3 = dt.date(2026, 10, 31), dt.date(2026, 11, 2), dt.date(2026, 11, 3), dt.date(2026, 11, 4)
PERIOD = (dt.date(2026, 11, 1), dt.date(2026, 11, 30))
OPENING = 10_000_000

# (line, expected category, payout or other reference of the ledger item(s) it accounts for)
PLANTED = [
    (line("FB0001", D1, -150_000, "P0001", "CHI TRA TRO CAP P0001"), Category.MATCHED, "P0001"),
    (line("FB0002", D1, -200_000, "P0002", "CHI TRA TRO CAP P0002"), Category.MATCHED, "P0002"),
    (line("FB0003", D2, -150_000, "P0001", "CHI TRA TRO CAP P0001"), Category.DUPLICATE_IN_BANK, ""),
    (line("FB0004", D2, -480_000, "P0003", "CHI TRA TRO CAP P0003"), Category.AMOUNT_MISMATCH, "P0003"),
    (line("FB0005", D2, 150_000, "P0001", "RETURN P0001 tai khoan dong"), Category.RETURNED, ""),
    (line("FB0006", D3, 77_000, "", "Nguyen Van Test chuyen tien"), Category.MISSING_IN_LEDGER, ""),
    (line("FB0007", D3, -300_000, "B20261101", "CHI TRA THEO LO B20261101"), Category.MATCHED, "P0004 P0005"),
    (line("FB0008", D3, 50_000, "", "MBVCB.3312.CP7K2M9QXB.thanh toan"), Category.SUGGESTED, "CP7K2M9QXA"),
    (line("FB0009", D3, 2_000_000, "", "NAP NGAN SACH FUND202611"), Category.MATCHED, "FUND202611"),
]
MISSING_IN_BANK = "P0009"
EXPECTED = {
    Category.MATCHED: 4,
    Category.SUGGESTED: 1,
    Category.MISSING_IN_LEDGER: 1,
    Category.MISSING_IN_BANK: 1,
    Category.AMOUNT_MISMATCH: 1,
    Category.DUPLICATE_IN_BANK: 1,
    Category.RETURNED: 1,
}
FORMATS = ["csv", "camt053.001.02", "camt053.001.08", "mt940"]


def post_ledger(book: Book) -> dict[str, str]:
    """Post the planted ledger side; return the transaction id of each reference."""
    txs = {
        "OPENING": book.fund("funding:2026-10", OPENING, D0, funding_ref="FUND202610").public_id,
        "P0001": book.payout("P0001", 150_000, D1, bank_txn_id="FB0001").public_id,
        "P0002": book.payout("P0002", 200_000, D1).public_id,
        "P0003": book.payout("P0003", 500_000, D1).public_id,
        "P0004": book.payout("P0004", 100_000, D2, batch="B20261101").public_id,
        "P0005": book.payout("P0005", 200_000, D2, batch="B20261101").public_id,
        "CP7K2M9QXA": book.post("receipt:1", "receipt", 50_000, D3, SALES, intent="CP7K2M9QXA").public_id,
        "P0009": book.payout("P0009", 99_000, D2).public_id,
        "FUND202611": book.fund("funding:2026-11", 2_000_000, D3, funding_ref="FUND202611").public_id,
    }
    book.seal()
    return txs


def statement(fmt: str) -> tuple[bytes, dict[str, str]]:
    """Return the planted statement in ``fmt`` and the form fields it is uploaded with."""
    lines = [x for x, _, _ in PLANTED]
    if fmt == "csv":
        return simulator_csv(lines, OPENING), {"format": "csv", "from": "2026-11-01", "to": "2026-11-30"}
    if fmt == "mt940":
        return mt940(lines, OPENING, period=PERIOD), {"format": "mt940"}
    return camt053(lines, OPENING, version=fmt[-2:], period=PERIOD), {"format": "camt053"}

"""Obviously fake identities and files for the disbursement tests."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable, Sequence
from typing import Any

from openpyxl import Workbook

from disbursement import domain

BIN = "970436"  # Vietcombank, in the bank directory
OTHER_BIN = "970415"


def cccd(
    serial: int, *, born: dt.date = dt.date(1960, 5, 1), gender: str = "male", province: str = "049"
) -> str:
    """Return a well-formed fake CCCD agreeing with ``born`` and ``gender``."""
    return f"{province}{domain.century_digit(born.year, gender)}{born.year % 100:02d}{serial:06d}"


def person(serial: int, **overrides: Any) -> dict[str, Any]:
    """Return the registry fields of fake beneficiary number ``serial``."""
    born = overrides.pop("born", dt.date(1950 + serial % 40, 1 + serial % 12, 1 + serial % 28))
    gender = overrides.pop("gender", "female" if serial % 2 else "male")
    values: dict[str, Any] = {
        "national_id": cccd(serial, born=born, gender=gender),
        "full_name": f"Nguyễn Văn Test {serial:04d}",
        "date_of_birth": born.isoformat(),
        "gender": gender,
        "ward": f"Phường Test {serial % 5}",
        "province": "Quảng Nam",
        "phone": f"09{serial:08d}",
        "bin": BIN,
        "account_number": f"9{serial:09d}",
    }
    values.update(overrides)
    return values


def csv_file(
    header: Sequence[str], rows: Iterable[Sequence[Any]], *, bom: bool = False, crlf: bool = False
) -> bytes:
    """Write a CSV file as Excel would."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n" if crlf else "\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(row)
    data = out.getvalue().encode()
    return (b"\xef\xbb\xbf" + data) if bom else data


def xlsx_file(header: Sequence[str], rows: Iterable[Sequence[Any]], *, sheets: Sequence[str] = ()) -> bytes:
    """Write an XLSX workbook whose first sheet holds the table."""
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("Danh sach")
    ws.append(list(header))
    for row in rows:
        ws.append(list(row))
    for name in sheets:
        wb.create_sheet(name).append(["ghi chu"])
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()

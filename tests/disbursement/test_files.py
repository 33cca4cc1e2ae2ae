"""The streaming CSV/XLSX reader: Excel habits tolerated, file problems named, no crash on any bytes."""

from __future__ import annotations

import io
import zipfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from disbursement.files import Columns, FileProblem, open_table
from tests.disbursement.helpers import csv_file, xlsx_file

COLUMNS = Columns(("national_id", "full_name", "amount"), ("bin", "account_number"))
HEADER = ["national_id", "full_name", "amount"]


def read(data: bytes) -> list[tuple[int, dict[str, str], frozenset[str]]]:
    return [(r.number, r.values, r.numeric) for r in open_table(io.BytesIO(data), COLUMNS)]


def problem(data: bytes) -> FileProblem:
    with pytest.raises(FileProblem) as caught:
        list(open_table(io.BytesIO(data), COLUMNS))
    return caught.value


def test_excel_csv_with_bom_crlf_and_trailing_blank_rows():
    data = (
        csv_file(
            HEADER,
            [["049061012345", "Nguyễn Văn Test", "500000"], ["", "", ""], ["", "", ""]],
            bom=True,
            crlf=True,
        )
        + b"\r\n\r\n"
    )
    assert read(data) == [
        (2, {"national_id": "049061012345", "full_name": "Nguyễn Văn Test", "amount": "500000"}, frozenset())
    ]


def test_headers_match_ignoring_case_and_spacing_and_rows_keep_file_numbers():
    data = b'National ID;Full Name;AMOUNT;STT\n049061012345;A;1;1\n\n049061012346;"B\nC";2;2\n'
    table = open_table(io.BytesIO(data), COLUMNS)
    assert [w.code for w in table.warnings] == ["column_ignored"]
    assert [(r.number, r.values["full_name"]) for r in table] == [(2, "A"), (4, "B\nC")]


@pytest.mark.parametrize(
    ("data", "code", "says"),
    [
        (b"national_id,full_name,amount\n049061012345,Nguy\xe1n,1\n", "file_encoding", "UTF-8"),
        (b"\xff\xfen\x00a\x00", "file_encoding", "CSV UTF-8"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 100, "file_format", ".xlsx"),
        (b"", "file_empty", "empty"),
        (b"\n\n  \n", "file_empty", "empty"),
        (b"national_id,full_name\n1,2\n", "column_missing", "'amount'"),
        (b"natinal_id,full_name,amount\n", "column_unknown", "did you mean 'national_id'"),
        (b"national_id,full_name,amount,acount_number\n", "column_unknown", "'account_number'"),
        (b"national_id,full_name,amount,amount\n", "column_duplicate", "twice"),
        (b"PK\x03\x04garbage", "xlsx_unreadable", "damaged"),
        (b"national_id,full_name,amount\n" + b"x" * 70_000 + b"\n", "row_unreadable", "longer"),
    ],
)
def test_file_problems_are_named_with_what_to_do(data: bytes, code: str, says: str):
    found = problem(data)
    assert found.code == code
    assert says in found.message


def test_not_utf8_names_the_line():
    data = b"national_id,full_name,amount\n049061012345,A,1\n049061012346,Nguy\xe1n,1\n"
    found = problem(data)
    assert found.row == 3
    assert "line 3" in found.message


def test_a_value_beyond_the_header_is_a_row_problem_not_a_file_problem():
    rows = open_table(io.BytesIO(b"national_id,full_name,amount\n1,2,3,4\n1,2,3\n"), COLUMNS)
    found = [(r.number, [p.code for p in r.problems]) for r in rows]
    assert found == [(2, ["row_too_many_cells"]), (3, [])]


def test_xlsx_number_cells_are_marked_and_dates_read_as_text():
    data = xlsx_file(
        HEADER,
        [[49061012345, "Nguyễn Văn Test", 500000.0], ["049061012346", "B", 7], [None, None, None]],
        sheets=["Ghi chú"],
    )
    table = open_table(io.BytesIO(data), COLUMNS)
    assert [w.code for w in table.warnings] == ["xlsx_several_sheets"]
    assert "only the first, 'Danh sach', is read" in table.warnings[0].message
    assert [(r.number, r.values["national_id"], r.values["amount"], sorted(r.numeric)) for r in table] == [
        (2, "49061012345", "500000", ["amount", "national_id"]),
        (3, "049061012346", "7", ["amount"]),
    ]


def test_xlsx_zip_bomb_is_refused_before_it_inflates():
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("xl/worksheets/sheet1.xml", b"\0" * (50 * 1024 * 1024))
    found = problem(out.getvalue())
    assert found.code == "xlsx_too_large"
    assert "zip bomb" in found.message


def test_xlsx_without_a_header_row():
    found = problem(xlsx_file([], []))
    assert found.code in {"file_empty", "column_missing"}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_never_crash_the_reader(data: bytes):
    outcome = _outcome(data)
    if isinstance(outcome, FileProblem):
        assert outcome.code
        assert outcome.message
    else:
        assert all(set(values) >= {"national_id", "full_name", "amount"} for values in outcome)


def _outcome(data: bytes) -> list[dict[str, str]] | FileProblem:
    """Read ``data`` to the end: its rows' values, or the FileProblem that stopped it (nothing else)."""
    try:
        return [row.values for row in open_table(io.BytesIO(data), COLUMNS)]
    except FileProblem as exc:
        return exc


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(min_size=4, max_size=3000))
def test_arbitrary_bytes_in_a_zip_never_crash_the_reader(tail: bytes):
    for data in (b"PK\x03\x04" + tail, _damaged(tail)):
        outcome = _outcome(data)
        if isinstance(outcome, FileProblem):
            assert outcome.code.startswith(("xlsx_", "file_", "column_", "row_", "header_"))


def _damaged(noise: bytes) -> bytes:
    """Return a real workbook with some of its bytes overwritten."""
    data = bytearray(xlsx_file(HEADER, [["049061012345", "A", 1]]))
    for i, b in enumerate(noise[:200]):
        data[(i * 7919) % len(data)] = b
    return bytes(data)


CELL = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=30).map(str.strip)
ROWS = st.lists(st.tuples(CELL, CELL, CELL).filter(lambda r: any(r)), max_size=40)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ROWS, st.booleans(), st.booleans())
def test_every_row_of_a_valid_csv_is_seen_exactly_once(
    rows: list[tuple[str, str, str]], bom: bool, crlf: bool
):
    data = csv_file(HEADER, rows, bom=bom, crlf=crlf)
    seen = read(data)
    assert [tuple(v[c] for c in HEADER) for _, v, _ in seen] == rows
    assert [n for n, _, _ in seen] == list(range(2, 2 + len(rows)))


XLSX_CELL = (
    st.text(
        alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x2FFF, blacklist_categories=("Cs",)),
        max_size=20,
    )
    .map(str.strip)
    .filter(lambda t: not t.startswith("="))
)
"""Cells that are text as typed: openpyxl writes a leading '=' as a formula, with no value cached."""


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(XLSX_CELL, XLSX_CELL, st.integers(-(10**12), 10**12)), max_size=30))
def test_every_row_of_a_valid_xlsx_is_seen_exactly_once(rows: list[tuple[str, str, int]]):
    data = xlsx_file(HEADER, rows)
    seen = read(data)
    assert [(v["national_id"], v["full_name"], v["amount"]) for _, v, _ in seen] == [
        (a, b, str(c)) for a, b, c in rows
    ]
    assert [n for n, _, _ in seen] == list(range(2, 2 + len(rows)))

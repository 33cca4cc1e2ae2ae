"""CSV statements: the presets, Excel's habits, the mapping options and every kind of bad file."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from payments.reconciliation.errors import (
    MAX_PROBLEMS,
    ColumnMissing,
    CurrencyNotVnd,
    DateOutOfOrder,
    DateOutsidePeriod,
    DuplicateLineId,
    EncodingInvalid,
    FieldInvalid,
    StatementError,
    StatementMalformed,
    StatementUnbalanced,
)
from payments.reconciliation.statements import SEPAY, CsvMapping, parse_statement, read_csv
from tests.payments.reconciliation.writers import cleaned, line, simulator_csv

DAY = dt.date(2026, 11, 2)
LINES = [
    line("FB0001", DAY, -150_000, "P0001", "CHI TRA TRO CAP P0001"),
    line("FB0002", DAY, 50_000, "", "Nguyen Van Test chuyen tien"),
    line("FB0003", dt.date(2026, 11, 3), 150_000, "P0001", "RETURN P0001 tai khoan dong"),
]


def problems(exc: pytest.ExceptionInfo[StatementError]) -> list[tuple[str, str | None]]:
    return [(p.code, p.location) for p in exc.value.problems]


def test_simulator_export_reads_every_field_and_derives_the_balances():
    statement = read_csv(io.BytesIO(simulator_csv(LINES, 1_000_000)))
    assert statement.opening_balance == 1_000_000
    assert statement.closing_balance == 1_050_000
    assert (statement.period_from, statement.period_to) == (DAY, dt.date(2026, 11, 3))
    assert [(x.line_id, x.amount, x.reference, x.source) for x in statement.lines] == [
        ("FB0001", -150_000, "P0001", "line 2"),
        ("FB0002", 50_000, "", "line 3"),
        ("FB0003", 150_000, "P0001", "line 4"),
    ]
    assert statement.lines[1].description == "Nguyen Van Test chuyen tien"
    assert statement.format == "csv:bank_simulator"


def test_excel_export_with_bom_crlf_sep_line_and_trailing_blank_rows():
    body = simulator_csv(LINES, 1_000_000, newline="\r\n").replace(b",", b";")
    excel = b"\xef\xbb\xbfsep=;\r\n" + body + b";;;;;;;\r\n\r\n;;\r\n"
    statement = read_csv(io.BytesIO(excel))
    assert [x.line_id for x in statement.lines] == ["FB0001", "FB0002", "FB0003"]
    assert statement.lines[0].source == "line 3"
    assert statement.fingerprint == read_csv(io.BytesIO(simulator_csv(LINES, 1_000_000))).fingerprint


def test_sepay_export_newest_first_with_split_amounts_and_fractions():
    header = (
        "id,bank_brand_name,account_number,transaction_date,amount_out,amount_in,accumulated,"
        "transaction_content,reference_number,code,sub_account,bank_account_id\n"
    )
    rows = (
        "49682,Vietcombank,0123456789012,2023-05-05 19:59:48,0.00,18067000.00,1200541768.00,"
        "NGUYEN VAN TEST chuyen tien CP7K2M9QXA,677760.050523.080001,CP7K2M9QXA,VCB0011ABC004,19\n"
        "49582,Vietcombank,0123456789012,2023-05-05 17:59:47,250000.00,0.00,1182474768.00,"
        "TRAN THI TEST rut tien,171158.050523.060001,,VCB0011ABC002,19\n"
    )
    statement = read_csv(io.BytesIO((header + rows).encode()), SEPAY)
    assert [(x.line_id, x.amount, x.source) for x in statement.lines] == [
        ("49582", -250_000, "line 3"),
        ("49682", 18_067_000, "line 2"),
    ]
    assert statement.opening_balance == 1_182_724_768
    assert statement.closing_balance == 1_200_541_768
    assert statement.lines[1].reference == "CP7K2M9QXA 677760.050523.080001"
    assert statement.account == "0123456789012"
    assert statement.masked_account == "*********9012"


def test_custom_mapping_with_direction_thousands_and_vietnamese_dates():
    mapping = CsvMapping(
        line_id="Số GD",
        booking_date="Ngày",
        amount="Số tiền",
        direction="Loại",
        reference=("Tham chiếu",),
        description=("Nội dung",),
        date_format="%d/%m/%Y",
        decimal_separator=",",
        thousands_separator=".",
        delimiter=";",
    )
    text = (
        "Số GD;Ngày;Số tiền;Loại;Tham chiếu;Nội dung\n"
        "A1;02/11/2026;1.500.000;C;;Nộp tiền\n"
        "A2;03/11/2026;250.000,00;D;P0009;Chi trả\n"
    )
    statement = read_csv(io.BytesIO(text.encode()), mapping, opening_balance=0, closing_balance=1_250_000)
    assert [(x.line_id, x.booking_date, x.amount) for x in statement.lines] == [
        ("A1", dt.date(2026, 11, 2), 1_500_000),
        ("A2", dt.date(2026, 11, 3), -250_000),
    ]
    assert statement.lines[0].description == "Nộp tiền"


def test_negated_amount_column():
    mapping = CsvMapping(line_id="id", booking_date="date", amount="out", negate=True)
    text = "id,date,out\nX1,2026-11-02,5000\nX2,2026-11-02,-7000\n"
    statement = read_csv(io.BytesIO(text.encode()), mapping, opening_balance=10_000, closing_balance=12_000)
    assert [x.amount for x in statement.lines] == [-5000, 7000]


def test_mapping_without_balances_needs_them_from_the_caller():
    mapping = CsvMapping(line_id="id", booking_date="date", amount="amount")
    with pytest.raises(StatementMalformed, match="opening and closing balances"):
        read_csv(io.BytesIO(b"id,date,amount\nX1,2026-11-02,5\n"), mapping)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"amount": "a", "credit": "c", "debit": "d"},
        {"credit": "c"},
        {},
        {"amount": "a", "decimal_separator": ",", "thousands_separator": ","},
    ],
)
def test_inconsistent_mappings_are_refused(kwargs):
    with pytest.raises(ValueError, match="."):
        CsvMapping(line_id="id", booking_date="date", **kwargs)


def test_missing_columns_are_named_with_the_header_found():
    with pytest.raises(ColumnMissing) as exc:
        read_csv(io.BytesIO(b"line_id,booking_date,amount\nFB1,2026-11-02,5\n"))
    assert exc.value.location == "line 1"
    assert "value_date, balance, currency, reference, description" in exc.value.message
    assert "(the header has: line_id, booking_date, amount)" in exc.value.message


def test_non_utf8_file_names_the_line_and_the_encoding_to_use():
    data = simulator_csv(LINES, 1_000_000).replace(b"Nguyen", "Nguyễn".encode("utf-16-le")[:2] + b"\xea")
    with pytest.raises(EncodingInvalid) as exc:
        read_csv(io.BytesIO(data))
    assert exc.value.location.startswith("line 3, byte ")
    assert "CSV UTF-8" in exc.value.message
    with pytest.raises(EncodingInvalid, match="UTF-16"):
        read_csv(
            io.BytesIO("\ufeff".encode("utf-16-le") + simulator_csv(LINES, 0).decode().encode("utf-16-le"))
        )


def test_every_bad_field_is_reported_with_line_and_column():
    text = simulator_csv(LINES, 1_000_000).decode()
    text = text.replace("FB0002,2026-11-02,2026-11-02,50000", "FB 2,2026-13-02,2026-11-02,50000.5")
    with pytest.raises(FieldInvalid) as exc:
        read_csv(io.BytesIO(text.encode()))
    assert problems(exc) == [
        ("field_invalid", "line 3, column line_id"),
        ("field_invalid", "line 3, column booking_date"),
        ("field_invalid", "line 3, column amount"),
    ]
    assert "fraction of a dong" in exc.value.problems[2].message


def test_statement_checks_collect_every_problem():
    rows = [
        line("FB1", dt.date(2026, 11, 5), -10, "P1"),
        line("FB1", dt.date(2026, 11, 4), -20, "P2"),
    ]
    text = simulator_csv(rows, 100).decode().replace("VND,70", "USD,70")
    with pytest.raises(StatementError) as exc:
        read_csv(io.BytesIO(text.encode()), period=(dt.date(2026, 11, 1), dt.date(2026, 11, 4)))
    assert problems(exc) == [
        ("currency_not_vnd", "line 3, column currency"),
        ("duplicate_line_id", "line 3"),
        ("date_out_of_order", "line 3"),
        ("date_outside_period", "line 2"),
    ]
    assert exc.value.to_problem()["errors"][1] == {
        "code": "duplicate_line_id",
        "location": "line 3",
        "message": "line id FB1 appears twice",
    }


@pytest.mark.parametrize(
    ("edit", "error", "location"),
    [
        ((",50000,VND", ",60000,VND"), StatementUnbalanced, "line 3"),
        ((",-150000,VND,850000", ",-150000,VND,840000"), StatementUnbalanced, "line 3"),
        (("2026-11-03,2026-11-03", "2026-11-01,2026-11-01"), DateOutOfOrder, "line 4"),
        (("VND,1050000", "EUR,1050000"), CurrencyNotVnd, "line 4, column currency"),
        (("FB0003", "FB0001"), DuplicateLineId, "line 4"),
    ],
)
def test_each_statement_rule(edit, error, location):
    text = simulator_csv(LINES, 1_000_000).decode().replace(*edit)
    assert text != simulator_csv(LINES, 1_000_000).decode()
    with pytest.raises(error) as exc:
        read_csv(io.BytesIO(text.encode()))
    assert exc.value.location == location
    assert len(exc.value.problems) == 1


def test_closing_balance_given_by_the_caller_must_agree():
    with pytest.raises(StatementUnbalanced, match="off by 1"):
        read_csv(io.BytesIO(simulator_csv(LINES, 1_000_000)), closing_balance=1_050_001)


def test_period_given_by_the_caller_holds_the_lines():
    with pytest.raises(DateOutsidePeriod) as exc:
        read_csv(io.BytesIO(simulator_csv(LINES, 0)), period=(DAY, DAY))
    assert exc.value.location == "line 4"


def test_problems_stop_at_the_cap():
    rows = [line(f"FB{i}", DAY, 1, "", "x") for i in range(MAX_PROBLEMS + 50)]
    text = simulator_csv(rows, 0).decode().replace(",VND,", ",USD,")
    with pytest.raises(CurrencyNotVnd) as exc:
        read_csv(io.BytesIO(text.encode()))
    assert len(exc.value.problems) == MAX_PROBLEMS
    assert exc.value.truncated
    assert "(and 99+ more problems)" in exc.value.detail


def test_empty_and_header_only_files():
    with pytest.raises(StatementMalformed, match="empty"):
        read_csv(io.BytesIO(b""))
    with pytest.raises(StatementMalformed, match="no lines"):
        read_csv(io.BytesIO(simulator_csv([], 0)))
    mapping = CsvMapping(line_id="id", booking_date="date", amount="amount")
    statement = read_csv(
        io.BytesIO(b"id,date,amount\n"), mapping, opening_balance=7, closing_balance=7, period=(DAY, DAY)
    )
    assert statement.lines == ()
    assert statement.opening_balance == statement.closing_balance == 7


def test_rows_with_extra_fields_and_nul_characters():
    text = simulator_csv(LINES, 0).decode().replace("P0001,CHI TRA TRO CAP P0001", "P0001,a,b")
    with pytest.raises(StatementMalformed, match="9 fields; the header has 8") as exc:
        read_csv(io.BytesIO(text.encode()))
    assert exc.value.location == "line 2"
    text = simulator_csv(LINES, 0).decode().replace("Nguyen", "Ngu\x00yen")
    with pytest.raises(FieldInvalid, match="NUL") as exc:
        read_csv(io.BytesIO(text.encode()))
    assert exc.value.location == "line 3, column description"


def test_parse_statement_dispatches_by_format_and_preset_name():
    statement = parse_statement(io.BytesIO(simulator_csv(LINES, 0)), "csv", mapping="bank_simulator")
    assert len(statement.lines) == 3


texts = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Zl", "Zp")), max_size=40)
line_specs = st.lists(
    st.tuples(
        st.integers(-9_999_999_999_999, 9_999_999_999_999),
        st.integers(0, 3),
        texts,
        texts,
    ),
    max_size=30,
)


@settings(max_examples=60, deadline=None)
@given(line_specs, st.integers(-(10**15), 10**15))
def test_simulator_csv_round_trips(specs, opening):
    day = DAY
    rows = []
    for i, (amount, gap, reference, description) in enumerate(specs):
        day += dt.timedelta(days=gap)
        rows.append(line(f"FB{i:06d}", day, amount, reference, description))
    if not rows:
        return
    statement = read_csv(io.BytesIO(simulator_csv(rows, opening)))
    assert statement.opening_balance == opening
    assert statement.closing_balance == opening + sum(x.amount for x in rows)
    assert [(x.line_id, x.booking_date, x.amount) for x in statement.lines] == [
        (x.line_id, x.booking_date, x.amount) for x in rows
    ]
    assert [x.reference for x in statement.lines] == [cleaned(x.reference) for x in rows]
    assert [x.description for x in statement.lines] == [cleaned(x.description) for x in rows]

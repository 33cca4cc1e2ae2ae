"""MT940: statements written by mt940-writer, pages, reversal marks and bad files."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from payments.reconciliation.errors import (
    CurrencyNotVnd,
    EncodingInvalid,
    FieldInvalid,
    StatementMalformed,
    StatementUnbalanced,
)
from payments.reconciliation.statements import read_mt940
from tests.payments.reconciliation.writers import line, mt940

DAY = dt.date(2026, 11, 2)
LINES = [
    line("FB0001", DAY, -150_000, "P0001", "CHI TRA TRO CAP P0001"),
    line("FB0002", DAY, 50_000, "", "Nguyen Van Test chuyen tien"),
    line("FB0003", dt.date(2026, 11, 3), 150_000, "P0001", "RETURN P0001"),
]


def test_statement_written_by_mt940_writer():
    statement = read_mt940(io.BytesIO(mt940(LINES, 1_000_000)))
    assert statement.format == "mt940"
    assert (statement.opening_balance, statement.closing_balance) == (1_000_000, 1_050_000)
    assert (statement.period_from, statement.period_to) == (DAY, dt.date(2026, 11, 3))
    assert type(statement.period_from) is dt.date
    assert statement.statement_id == "STMT-1"
    assert [(x.line_id, x.amount, x.reference, x.description, x.source) for x in statement.lines] == [
        ("FB0001", -150_000, "P0001", "CHI TRA TRO CAP P0001", "line 5"),
        ("FB0002", 50_000, "", "Nguyen Van Test chuyen tien", "line 7"),
        ("FB0003", 150_000, "P0001", "RETURN P0001", "line 9"),
    ]


SWIFT = """{1:F01BANKVNVXAXXX0000000000}{2:I940CHOPAYVNXXXXN}{4:
:20:STMT-7
:25:0123456789
:28C:00007/001
:60F:C261101VND1000000,
:61:2611021102D150000,NTRFP0001//FB0001
:86:CHI TRA TRO CAP P0001
 THANG 11
:61:2611021102RC5000,NCHGNONREF//FB0002
:62M:C261102VND845000,
-}
{1:F01BANKVNVXAXXX0000000000}{2:I940CHOPAYVNXXXXN}{4:
:20:STMT-7
:25:0123456789
:28C:00007/002
:60M:C261102VND845000,
:61:2611031103RD5000,NCHGNONREF//FB0003
:61:2611031103C20000,NTRFCP7K2M9QXA//FB0004
extra details
:62F:C261103VND870000,
:64:C261103VND870000,
-}
"""


def test_pages_chain_and_reversal_marks_are_signed_by_their_effect():
    statement = read_mt940(io.BytesIO(SWIFT.encode()))
    assert [(x.line_id, x.amount, x.reversal) for x in statement.lines] == [
        ("FB0001", -150_000, False),
        ("FB0002", -5_000, True),
        ("FB0003", 5_000, True),
        ("FB0004", 20_000, False),
    ]
    assert statement.lines[0].description == "CHI TRA TRO CAP P0001 THANG 11"
    assert statement.lines[3].reference == "CP7K2M9QXA"
    assert statement.lines[3].description == "extra details"
    assert statement.account == "0123456789"
    assert statement.available_balance == 870_000
    assert statement.period_to == dt.date(2026, 11, 3)


def test_pages_that_do_not_chain():
    text = SWIFT.replace(":60M:C261102VND845000,", ":60M:C261102VND846000,")
    with pytest.raises(StatementUnbalanced, match="does not continue") as exc:
        read_mt940(io.BytesIO(text.encode()))
    assert exc.value.location == "line 16"


def test_broken_statement_line_names_its_line_only():
    text = SWIFT.replace(":61:2611021102RC5000,", ":61:26110X1102RC5000,")
    with pytest.raises(StatementMalformed, match=":61: statement line does not follow") as exc:
        read_mt940(io.BytesIO(text.encode()))
    assert exc.value.location == "line 9"
    assert len(exc.value.problems) == 1


@pytest.mark.parametrize(
    ("edit", "error", "location", "message"),
    [
        (("D150000,", "D150000,5"), FieldInvalid, "line 6", "fraction of a dong"),
        (("//FB0002", ""), FieldInvalid, "line 9", "bank reference"),
        (("1102D150000,", "1131D150000,"), StatementMalformed, "line 6", "cannot be read"),
        ((":62F:C261103VND870000,", ":62F:C261103VND870001,"), StatementUnbalanced, "line 20", "off by 1"),
        ((":60F:C261101VND", ":60F:C261101EUR"), CurrencyNotVnd, "line 5", "EUR"),
        ((":20:STMT-7\n:25:0123456789\n:28C:00007/001\n", ""), StatementMalformed, "line 2", "before :20:"),
    ],
)
def test_bad_tags(edit, error, location, message):
    text = SWIFT.replace(*edit, 1)
    assert text != SWIFT
    with pytest.raises(error, match=message) as exc:
        read_mt940(io.BytesIO(text.encode()))
    assert exc.value.location == location


def test_encoding_and_empty_input():
    with pytest.raises(EncodingInvalid) as exc:
        read_mt940(io.BytesIO(SWIFT.encode().replace(b"THANG", b"TH\xc1NG")))
    assert exc.value.location == "line 8"
    with pytest.raises(StatementMalformed, match="holds no statement"):
        read_mt940(io.BytesIO(b""))


references = st.text(st.sampled_from("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"), min_size=1, max_size=16)
details = st.text(st.sampled_from("ABCDEFGH abcdefgh0123456789.-/"), max_size=60)


@settings(max_examples=50, deadline=None)
@given(
    # :61: amounts are 15 characters with the comma; mt940-writer writes two decimals.
    st.lists(st.tuples(st.integers(-(10**11), 10**11), st.integers(0, 2), references, details), max_size=25),
    st.integers(0, 10**14),
)
def test_mt940_round_trips(specs, opening):
    day = DAY
    rows = []
    for i, (amount, gap, reference, description) in enumerate(specs):
        day += dt.timedelta(days=gap)
        rows.append(line(f"FB{i:06d}", day, amount, reference, description))
    if not rows:
        return
    statement = read_mt940(io.BytesIO(mt940(rows, opening)))
    assert statement.closing_balance == opening + sum(x.amount for x in rows)
    assert [(x.line_id, x.booking_date, x.amount, x.reference) for x in statement.lines] == [
        (x.line_id, x.booking_date, x.amount, "" if x.reference == "NONREF" else x.reference) for x in rows
    ]
    assert [x.description for x in statement.lines] == [" ".join(x.description.split()) for x in rows]

"""camt.053 .001.02 and .001.08: reading, chaining statements, hostile XML and bad files."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from payments.reconciliation.errors import (
    CurrencyNotVnd,
    DateOutOfOrder,
    DateOutsidePeriod,
    FieldInvalid,
    NamespaceUnsupported,
    StatementMalformed,
    StatementUnbalanced,
    XmlForbidden,
)
from payments.reconciliation.statements import StatementLine, parse_statement, read_camt053, sniff_format
from tests.payments.reconciliation.writers import camt053, camt_document, camt_entry, camt_stmt, cleaned, line

DAY = dt.date(2026, 11, 2)
LINES = [
    line("FB0001", DAY, -150_000, "P0001", "CHI TRA TRO CAP P0001"),
    line("FB0002", DAY, 50_000, "", "Nguyễn Văn Test chuyển tiền"),
    line("FB0003", dt.date(2026, 11, 3), 150_000, "P0001", "RETURN P0001"),
]
PERIOD = (dt.date(2026, 11, 1), dt.date(2026, 11, 30))


@pytest.mark.parametrize("version", ["02", "08"])
def test_both_versions_read_balances_entries_and_references(version):
    statement = read_camt053(io.BytesIO(camt053(LINES, 1_000_000, version=version, period=PERIOD)))
    assert statement.format == f"camt053.001.{version}"
    assert (statement.opening_balance, statement.closing_balance) == (1_000_000, 1_050_000)
    assert (statement.period_from, statement.period_to) == PERIOD
    assert statement.account == "0123456789"
    assert statement.statement_id == "STMT-1"
    assert [(x.line_id, x.amount, x.reference, x.description) for x in statement.lines] == [
        (x.line_id, x.amount, x.reference, x.description) for x in LINES
    ]
    assert statement.lines[2].source == "/Document/BkToCstmrStmt/Stmt[1]/Ntry[3]"


def test_fingerprint_ignores_the_version_and_file_layout():
    a = read_camt053(io.BytesIO(camt053(LINES, 1_000_000, version="02", period=PERIOD)))
    b = read_camt053(io.BytesIO(camt053(LINES, 1_000_000, version="08", period=PERIOD)))
    assert a.fingerprint == b.fingerprint
    changed = [LINES[0], LINES[1], line("FB0003", dt.date(2026, 11, 3), 150_001, "P0001", "RETURN P0001")]
    c = read_camt053(io.BytesIO(camt053(changed, 1_000_000, period=PERIOD)))
    assert c.fingerprint != a.fingerprint


def test_details_from_real_bank_layouts():
    entry = (
        '<Ntry><NtryRef>N1</NtryRef><Amt Ccy="VND">2500000.00</Amt><CdtDbtInd>DBIT</CdtDbtInd>'
        "<RvslInd>true</RvslInd><Sts><Cd>BOOK</Cd></Sts>"
        "<BookgDt><DtTm>2026-11-02T18:30:00Z</DtTm></BookgDt><ValDt><Dt>2026-11-02</Dt></ValDt>"
        "<AcctSvcrRef>BANK-77</AcctSvcrRef><NtryDtls>"
        "<TxDtls><Refs><EndToEndId>P0001</EndToEndId></Refs><RmtInf><Ustrd>lo 1</Ustrd></RmtInf></TxDtls>"
        "<TxDtls><Refs><EndToEndId>NOTPROVIDED</EndToEndId></Refs>"
        "<RmtInf><Strd><CdtrRefInf><Ref>RF18539007547034</Ref></CdtrRefInf></Strd></RmtInf></TxDtls>"
        "</NtryDtls><AddtlNtryInf>CHI TRA THEO LO</AddtlNtryInf></Ntry>"
        '<Ntry><NtryRef>N2</NtryRef><Amt Ccy="VND">99</Amt><CdtDbtInd>CRDT</CdtDbtInd>'
        "<Sts><Cd>PDNG</Cd></Sts><BookgDt><Dt>2026-11-03</Dt></BookgDt></Ntry>"
    )
    body = camt_stmt([], 2_500_000, version="08", period=PERIOD, closing=0).replace(
        "</Stmt>", entry + "</Stmt>"
    )
    statement = read_camt053(io.BytesIO(camt_document(body, "08")))
    (only,) = statement.lines
    assert only.line_id == "BANK-77"
    assert only.amount == -2_500_000
    assert only.reversal is True
    assert only.booking_date == dt.date(2026, 11, 3)  # 18:30 UTC is the next day in Vietnam
    assert only.value_date == dt.date(2026, 11, 2)
    assert only.reference == "P0001 RF18539007547034"
    assert only.description == "lo 1 CHI TRA THEO LO"


def test_consecutive_statements_chain_into_one():
    first = camt_stmt(LINES[:2], 1_000_000, period=(DAY, DAY), number=1)
    second = camt_stmt(LINES[2:], 900_000, period=(dt.date(2026, 11, 3), dt.date(2026, 11, 3)), number=2)
    statement = read_camt053(io.BytesIO(camt_document(first + second)))
    assert (statement.opening_balance, statement.closing_balance) == (1_000_000, 1_050_000)
    assert statement.lines[2].source == "/Document/BkToCstmrStmt/Stmt[2]/Ntry[1]"
    broken = camt_stmt(LINES[2:], 950_000, period=(dt.date(2026, 11, 3), dt.date(2026, 11, 3)), number=2)
    with pytest.raises(StatementUnbalanced, match="does not continue") as exc:
        read_camt053(io.BytesIO(camt_document(first + broken)))
    assert exc.value.location == "/Document/BkToCstmrStmt/Stmt[2]/Bal[1]"


def test_truncated_xml_names_line_column_and_element():
    data = camt053(LINES, 1_000_000, period=PERIOD)
    cut = data[: data.index(b"<Ntry>", data.index(b"FB0002") - 40) + 30]
    with pytest.raises(StatementMalformed) as exc:
        read_camt053(io.BytesIO(cut))
    assert exc.value.location.startswith("line ")
    assert "in /Document/BkToCstmrStmt/Stmt[1]/Ntry[2]" in exc.value.location
    assert "not well-formed" in exc.value.message
    assert len(exc.value.problems) == 1


def test_wrong_namespace_is_refused_at_the_root():
    data = camt053(LINES, 0, period=PERIOD).replace(b"camt.053.001.02", b"camt.052.001.02")
    with pytest.raises(NamespaceUnsupported) as exc:
        read_camt053(io.BytesIO(data))
    assert exc.value.location == "/Document"
    assert "camt.052.001.02" in exc.value.message
    with pytest.raises(NamespaceUnsupported):
        read_camt053(io.BytesIO(b"<Document><BkToCstmrStmt/></Document>"))


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"><BkToCstmrStmt><Stmt>
<Id>&lol9;</Id></Stmt></BkToCstmrStmt></Document>
"""
XXE = b"""<?xml version="1.0"?>
<!DOCTYPE Document [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"><BkToCstmrStmt><Stmt>
<Id>&xxe;</Id></Stmt></BkToCstmrStmt></Document>
"""
EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE Document SYSTEM "http://127.0.0.1:9/camt.dtd">
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"/>
"""


@pytest.mark.parametrize(
    "bomb", [BILLION_LAUGHS, XXE, EXTERNAL_DTD], ids=["billion-laughs", "xxe", "external-dtd"]
)
def test_xml_bombs_are_refused_with_one_clear_error(bomb):
    with pytest.raises(XmlForbidden) as exc:
        read_camt053(io.BytesIO(bomb))
    assert exc.value.problems == (exc.value,)
    assert "DTD" in exc.value.message
    assert exc.value.location.startswith("line 2, column ")
    assert exc.value.location.endswith(", in the prolog")
    assert "passwd" not in exc.value.detail


def test_entity_references_without_a_dtd_are_not_resolved():
    data = camt053(LINES, 0, period=PERIOD).replace(b"<Id>STMT-1</Id>", b"<Id>&xxe;</Id>")
    with pytest.raises(StatementMalformed, match="undefined entity"):
        read_camt053(io.BytesIO(data))


def test_unbalanced_statement_names_the_closing_balance():
    data = camt053(LINES, 1_000_000, period=PERIOD, closing=1_050_500)
    with pytest.raises(StatementUnbalanced, match="off by 500") as exc:
        read_camt053(io.BytesIO(data))
    assert exc.value.location == "/Document/BkToCstmrStmt/Stmt[1]/Bal[2]"


def test_wrong_currency_names_the_amount():
    entry = camt_entry(LINES[1])
    body = camt_stmt(LINES, 0, period=PERIOD).replace(entry, entry.replace('Ccy="VND"', 'Ccy="USD"'))
    with pytest.raises(CurrencyNotVnd) as exc:
        read_camt053(io.BytesIO(camt_document(body)))
    assert exc.value.location == "/Document/BkToCstmrStmt/Stmt[1]/Ntry[2]/Amt"
    assert len(exc.value.problems) == 1


def test_dates_out_of_order_and_outside_the_period():
    rows = [LINES[0], line("FB0009", dt.date(2026, 11, 1), 1, "", "early")]
    with pytest.raises(DateOutOfOrder) as exc:
        read_camt053(io.BytesIO(camt053(rows, 0, period=PERIOD)))
    assert exc.value.location == "/Document/BkToCstmrStmt/Stmt[1]/Ntry[2]"
    late = [line("FB0009", dt.date(2026, 12, 1), 1, "", "late")]
    with pytest.raises(DateOutsidePeriod) as exc2:
        read_camt053(io.BytesIO(camt053(late, 0, period=PERIOD)))
    assert exc2.value.location == "/Document/BkToCstmrStmt/Stmt[1]/Ntry[1]"


def test_bad_values_are_each_located():
    entry = camt_entry(LINES[1])
    bad = entry.replace("50000</Amt>", "50000.50</Amt>").replace("<CdtDbtInd>CRDT", "<CdtDbtInd>CRED")
    bad = bad.replace("<BookgDt><Dt>2026-11-02", "<BookgDt><Dt>2026-11-31")
    body = camt_stmt(LINES, 0, period=PERIOD).replace(entry, bad)
    with pytest.raises(FieldInvalid) as exc:
        read_camt053(io.BytesIO(camt_document(body)))
    assert [(p.code, p.location) for p in exc.value.problems] == [
        ("field_invalid", "/Document/BkToCstmrStmt/Stmt[1]/Ntry[2]/Amt"),
        ("field_invalid", "/Document/BkToCstmrStmt/Stmt[1]/Ntry[2]/BookgDt"),
    ]


def test_missing_balances_and_statements():
    body = camt_stmt(LINES, 0, period=PERIOD).replace("<Cd>OPBD</Cd>", "<Cd>ITBD</Cd>")
    with pytest.raises(StatementMalformed, match=r"has no opening \(OPBD or PRCD\) balance") as exc:
        read_camt053(io.BytesIO(camt_document(body)))
    assert exc.value.location == "/Document/BkToCstmrStmt/Stmt[1]"
    with pytest.raises(StatementMalformed, match="holds no statement"):
        read_camt053(io.BytesIO(camt_document("")))


def test_sniffing_and_dispatch():
    data = camt053(LINES, 0, period=PERIOD)
    assert sniff_format(data[:64]) == "camt053"
    assert sniff_format(b":20:STMT\n") == "mt940"
    assert sniff_format(b"line_id,booking_date") == "csv"
    assert len(parse_statement(io.BytesIO(data), sniff_format(data[:64])).lines) == 3


texts = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Zl", "Zp", "Co")), max_size=40)


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.tuples(st.integers(-(10**13) + 1, 10**13 - 1), st.integers(0, 2), texts, texts), max_size=25),
    st.integers(-(10**15), 10**15),
    st.sampled_from(["02", "08"]),
)
def test_camt_round_trips(specs, opening, version):
    day = dt.date(2026, 11, 1)
    rows: list[StatementLine] = []
    for i, (amount, gap, reference, description) in enumerate(specs):
        day += dt.timedelta(days=gap)
        rows.append(line(f"FB{i:06d}", day, amount, reference, description))
    statement = read_camt053(
        io.BytesIO(camt053(rows, opening, version=version, period=(DAY.replace(day=1), day)))
    )
    assert statement.closing_balance == opening + sum(x.amount for x in rows)
    assert [(x.line_id, x.booking_date, x.amount) for x in statement.lines] == [
        (x.line_id, x.booking_date, x.amount) for x in rows
    ]
    assert [x.reference for x in statement.lines] == [cleaned(x.reference) for x in rows]
    assert [x.description for x in statement.lines] == [cleaned(x.description) for x in rows]

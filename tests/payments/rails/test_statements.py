"""Statement exports parse back (CSV, camt.053 with an XML parser, MT940 with mt-940) and balance."""

from __future__ import annotations

import csv
import datetime as dt
import io
import xml.etree.ElementTree as ET
from decimal import Decimal
from pathlib import Path

import mt940
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine

from chopay.db import utcnow
from payments.rails.fakebank import accounts, incoming, payouts, statements
from payments.rails.fakebank import config as cfg
from payments.rails.fakebank.models import open_db
from payments.rails.fakebank.protocol import parse_batch
from payments.rails.webhooks import VIETNAM

NS = {"c": statements.CAMT_NS}
MERCHANT = ("970436", "0123456789")
TODAY = utcnow().astimezone(VIETNAM).date()


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    eng = open_db(tmp_path / "statements.db")
    with eng.begin() as conn:
        accounts.ensure_house_accounts(conn, 10_000_000)
        accounts.upsert(
            conn,
            bin_=MERCHANT[0],
            number=MERCHANT[1],
            holder_name="Bà Tư Bán Cá",
            status="active",
            balance=1_000,
        )
    return eng


def pay_out(engine: Engine, ref: str, amount: int, account: str = MERCHANT[1]) -> None:
    body = {
        "referenceId": f"B{ref}",
        "payouts": [
            {
                "referenceId": ref,
                "amount": amount,
                "description": f"Trợ cấp {ref}",
                "toBin": "970436",
                "toAccountNumber": account,
            }
        ],
    }
    with engine.begin() as conn:
        payouts.create(
            conn,
            parse_batch(body),
            idempotency_key=None,
            limit=10**12,
            strict=False,
            settle=dt.timedelta(),
            now=utcnow(),
        )


def receive(engine: Engine, amount: int, memo: str = "tien ca") -> None:
    with engine.begin() as conn:
        incoming.pay(conn, incoming.Payment(*MERCHANT, amount=amount, memo=memo), strict=False, now=utcnow())


def export(
    engine: Engine, fmt: str, bin_: str = MERCHANT[0], number: str = MERCHANT[1]
) -> tuple[str, statements.Statement]:
    with engine.connect() as conn:
        found = statements.build(conn, bin_, number, TODAY, TODAY)
    return statements.render(found, fmt), found


def csv_rows(text: str) -> list[dict[str, str]]:
    reader = csv.DictReader(io.StringIO(text))
    assert tuple(reader.fieldnames or ()) == statements.CSV_HEADER
    return list(reader)


def camt(text: str) -> tuple[int, int, list[tuple[str, int, str, str]]]:
    root = ET.fromstring(text.encode())
    assert root.tag == f"{{{statements.CAMT_NS}}}Document"
    stmt = root.find("c:BkToCstmrStmt/c:Stmt", NS)
    assert stmt is not None

    def signed(node: ET.Element) -> int:
        value = int(node.findtext("c:Amt", namespaces=NS) or "0")
        return value if node.findtext("c:CdtDbtInd", namespaces=NS) == "CRDT" else -value

    balances = {
        b.findtext("c:Tp/c:CdOrPrtry/c:Cd", namespaces=NS): signed(b) for b in stmt.findall("c:Bal", NS)
    }
    entries = []
    for e in stmt.findall("c:Ntry", NS):
        assert e.findtext("c:NtryRef", namespaces=NS) == e.findtext("c:AcctSvcrRef", namespaces=NS)
        entries.append(
            (
                e.findtext("c:NtryRef", namespaces=NS) or "",
                signed(e),
                e.findtext("c:NtryDtls/c:TxDtls/c:Refs/c:EndToEndId", namespaces=NS) or "",
                e.findtext("c:NtryDtls/c:TxDtls/c:RmtInf/c:Ustrd", namespaces=NS) or "",
            )
        )
    return balances["OPBD"], balances["CLBD"], entries


def test_csv_camt_and_mt940_tell_the_same_story(engine: Engine):
    pay_out(engine, "P1", 150_000)
    receive(engine, 45_000, "CPABCD2345 pho bo")
    pay_out(engine, "P2", 20_000)
    with engine.begin() as conn:
        payouts.return_transfer(conn, "P2", "account closed", utcnow())

    text, found = export(engine, "csv")
    rows = csv_rows(text)
    assert [int(r["amount"]) for r in rows] == [150_000, 45_000, 20_000, -20_000]
    assert [r["reference"] for r in rows] == ["P1", "", "P2", "P2"]
    assert rows[-1]["description"].startswith("RETURN ")
    assert all(r["currency"] == "VND" and r["booking_date"] == TODAY.isoformat() for r in rows)
    opening = int(rows[0]["balance"]) - int(rows[0]["amount"])
    assert opening == found.opening == 1_000
    running = opening
    for r in rows:
        running += int(r["amount"])
        assert int(r["balance"]) == running
    assert running == found.closing == 196_000

    opening_c, closing_c, entries = camt(export(engine, "camt053")[0])
    assert (opening_c, closing_c) == (1_000, 196_000)
    assert [(e[0], e[1], e[2]) for e in entries] == [
        (r["line_id"], int(r["amount"]), r["reference"] or "NOTPROVIDED") for r in rows
    ]
    assert entries[0][3] == "Trợ cấp P1"

    parsed = mt940.parse(export(engine, "mt940")[0])
    assert parsed.data["final_opening_balance"].amount.amount == Decimal(1_000)
    assert parsed.data["final_closing_balance"].amount.amount == Decimal(196_000)
    assert [t.data["amount"].amount for t in parsed] == [Decimal(int(r["amount"])) for r in rows]
    assert [t.data["bank_reference"] for t in parsed] == [r["line_id"] for r in rows]
    assert [t.data["customer_reference"] for t in parsed] == ["P1", "NONREF", "P2", "P2"]
    assert parsed[0].data["transaction_details"] == "Tro cap P1"


def test_the_source_account_statement_shows_payouts_as_debits(engine: Engine):
    pay_out(engine, "P1", 150_000)
    rows = csv_rows(export(engine, "csv", cfg.SOURCE_BIN, cfg.SOURCE_NUMBER)[0])
    assert [(r["amount"], r["reference"], r["balance"]) for r in rows] == [("-150000", "P1", "9850000")]


def test_a_range_before_any_movement_is_empty_and_balanced(engine: Engine):
    pay_out(engine, "P1", 150_000)
    with engine.connect() as conn:
        earlier = statements.build(
            conn, *MERCHANT, TODAY - dt.timedelta(days=10), TODAY - dt.timedelta(days=1)
        )
    assert earlier.lines == []
    assert earlier.opening == earlier.closing == 1_000


def test_bad_ranges_and_accounts_are_refused(engine: Engine):
    with engine.connect() as conn:
        with pytest.raises(ValueError, match="before"):
            statements.build(conn, *MERCHANT, TODAY, TODAY - dt.timedelta(days=1))
        with pytest.raises(LookupError):
            statements.build(conn, "970436", "0000000001", TODAY, TODAY)
    with pytest.raises(ValueError, match="format"):
        statements.render(
            statements.Statement(accounts.Account(1, "1", "1", "x", "active", 0), TODAY, TODAY, 0, 0, []),
            "pdf",
        )


operations = st.lists(
    st.one_of(
        st.tuples(st.just("payout"), st.integers(1, 2_000_000)),
        st.tuples(st.just("incoming"), st.integers(1, 2_000_000)),
        st.tuples(st.just("return"), st.integers(0, 30)),
    ),
    min_size=1,
    max_size=25,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=operations)
def test_every_export_balances_whatever_happened(tmp_path_factory, ops):
    engine = open_db(tmp_path_factory.mktemp("prop") / "fb.db")
    with engine.begin() as conn:
        accounts.ensure_house_accounts(conn, 10**12)
    paid: list[str] = []
    for n, (kind, value) in enumerate(ops):
        if kind == "payout":
            pay_out(engine, f"P{n}", value)
            paid.append(f"P{n}")
        elif kind == "incoming":
            receive(engine, value)
        elif paid:
            with engine.begin() as conn:
                payouts.return_transfer(conn, paid.pop(value % len(paid)), "returned", utcnow())
    if not any(k != "return" for k, _ in ops):
        return
    for bin_, number in (MERCHANT, (cfg.SOURCE_BIN, cfg.SOURCE_NUMBER)):
        text, found = export(engine, "csv", bin_, number)
        rows = csv_rows(text)
        assert found.opening + sum(int(r["amount"]) for r in rows) == found.closing
        opening, closing, entries = camt(export(engine, "camt053", bin_, number)[0])
        assert opening + sum(e[1] for e in entries) == closing == found.closing
        parsed = mt940.parse(export(engine, "mt940", bin_, number)[0])
        total = sum((t.data["amount"].amount for t in parsed), Decimal(0))
        assert parsed.data["final_opening_balance"].amount.amount + total == Decimal(found.closing)
        with engine.connect() as conn:
            account = accounts.get(conn, bin_, number)
        assert account is not None
        assert account.balance == found.closing
    engine.dispose()

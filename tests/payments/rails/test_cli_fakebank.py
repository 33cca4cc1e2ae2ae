"""``chopay fakebank`` commands that work on the database file, without a server."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from chopay.cli import main
from chopay.db import utcnow
from payments.rails.fakebank import config as cfg
from payments.rails.fakebank import payouts
from payments.rails.fakebank.config import parse_connector
from payments.rails.fakebank.models import open_db
from payments.rails.fakebank.protocol import parse_batch


def pay_out(db: str, reference: str, amount: int) -> None:
    """Pay through the protocol's own code into the database the commands use."""
    transfer = {
        "referenceId": reference,
        "amount": amount,
        "description": "TCXH",
        "toBin": "970436",
        "toAccountNumber": "0123456789",
    }
    engine = open_db(db)
    with engine.begin() as conn:
        payouts.create(
            conn,
            parse_batch({"referenceId": "B" + reference, "payouts": [transfer]}),
            idempotency_key=None,
            limit=10**9,
            strict=False,
            settle=dt.timedelta(),
            now=utcnow(),
        )
    engine.dispose()


def run(args: list[str]) -> Result:
    return CliRunner().invoke(main, ["fakebank", *args], prog_name="chopay")


def ok(result: Result) -> str:
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result.output


def test_every_fakebank_command_has_help():
    group = main.commands["fakebank"]
    assert isinstance(group, click.Group)
    names = set(group.commands)
    assert names >= {"serve", "accounts", "fund", "pay", "statement", "return", "simulate"}
    for name in names:
        assert ok(run([name, "--help"])).startswith("Usage: chopay fakebank " + name)
    assert "--drop-rate" in ok(run(["serve", "--help"]))


def test_accounts_import_show_fund_statement_and_return(tmp_path: Path):
    db = str(tmp_path / "fb.db")
    csv_file = tmp_path / "accounts.csv"
    csv_file.write_text(
        "bin,account_number,holder_name,status,balance\n970436,0123456789,Nguyen Van Test,active,5000\n"
    )
    assert ok(run(["accounts", "import", str(csv_file), "--db", db])) == f"imported 1 accounts into {db}\n"
    shown = ok(run(["accounts", "show", "970436", "0123456789", "--db", db]))
    assert "Nguyen Van Test" in shown
    assert "5,000" in shown
    assert "balance 1,000,000,000,000,100 VND" in ok(run(["fund", "100", "--db", db]))

    pay_out(db, "P1", 700)

    returned = json.loads(ok(run(["return", "P1", "--db", db])))
    assert returned["state"] == "REVERSED"
    text = ok(run(["statement", "970436", "0123456789", "--db", db]))
    lines = text.splitlines()
    assert lines[0] == "line_id,booking_date,value_date,amount,currency,balance,reference,description"
    assert [line.split(",")[3] for line in lines[1:]] == ["700", "-700"]
    out = tmp_path / "stmt.xml"
    assert "2 lines, opening 5,000, closing 5,000" in ok(
        run(["statement", "970436", "0123456789", "--format", "camt053", "-o", str(out), "--db", db])
    )
    assert out.read_text().startswith('<?xml version="1.0" encoding="UTF-8"?>')
    assert ok(run(["statement", "970436", "0123456789", "--format", "mt940", "--db", db])).startswith(
        ":20:FB"
    )


def test_seed_prints_accounts(tmp_path: Path):
    output = ok(run(["accounts", "seed", "12", "--seed", "3", "--db", str(tmp_path / "fb.db")]))
    assert "opened 12 accounts" in output
    assert "closed" in output


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["accounts", "show", "970436", "0000000001"], "no account"),
        (["return", "NOPE"], "no transfer has referenceId"),
        (["statement", "970436", "0000000001"], "no account"),
        (["statement", "970436", "0123456789", "--from", "2026-12-02", "--to", "2026-12-01"], "before"),
    ],
)
def test_errors_exit_1_with_a_message(tmp_path: Path, args, words):
    result = run([*args, "--db", str(tmp_path / "fb.db")])
    assert result.exit_code == 1
    assert words in result.output


def test_a_bad_csv_names_the_line_and_imports_nothing(tmp_path: Path):
    db = tmp_path / "fb.db"
    bad = tmp_path / "bad.csv"
    bad.write_text("bin,account_number,holder_name,status,balance\n970436,0123456789,A Test,active,x\n")
    result = run(["accounts", "import", str(bad), "--db", str(db)])
    assert result.exit_code == 1
    assert "line 2: balance" in result.output
    assert "nothing was imported" in result.output


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("cho=chopay:whsec_1", cfg.Connector("cho", "chopay", "whsec_1")),
        ("s1=sepay:key@http://127.0.0.1:9000", cfg.Connector("s1", "sepay", "key", "http://127.0.0.1:9000")),
        ("p=payos:a,b", cfg.Connector("p", "payos", "a,b")),
    ],
)
def test_connector_flags_parse(text, expected):
    assert parse_connector(text) == expected


@pytest.mark.parametrize("text", ["cho", "cho=chopay", "cho=fax:s", "=chopay:s", "cho=chopay:"])
def test_bad_connector_flags_are_refused(text):
    with pytest.raises(ValueError, match="connector"):
        parse_connector(text)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("account_number,bin\n1,2\n", "header must start with bin,account_number"),
        ("bin,account_number\n", "no merchants"),
    ],
)
def test_simulate_refuses_a_bad_merchants_file(tmp_path: Path, text, words):
    stalls = tmp_path / "stalls.csv"
    stalls.write_text(text)
    result = run(["simulate", "--merchants", str(stalls), "--bank-url", "http://127.0.0.1:9"])
    assert result.exit_code == 1
    assert words in result.output

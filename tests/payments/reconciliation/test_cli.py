"""``chopay reconcile``: the same engine on the server, for statements of any size."""

from __future__ import annotations

import csv
import datetime as dt
import io

from chopay.cli import main
from chopay.config import from_env
from chopay.db import Database
from payments.ledger import services as ledger
from payments.ledger.domain import Posting, TransactionSpec
from tests.payments.reconciliation.planted import PLANTED, statement


def test_reconcile_a_statement_file_and_write_the_report(runner, tmp_path):
    assert runner.invoke(main, ["init"]).exit_code == 0
    database = Database(from_env().database_url)
    with database.unit_of_work() as s:
        ledger.ensure_account(s, code="program:TCXH:budget", kind="asset")
        ledger.ensure_account(s, code="program:TCXH:funding", kind="equity")
        ledger.post(
            s,
            TransactionSpec(
                "funding:1",
                "funding",
                "TCXH",
                [Posting("program:TCXH:budget", 10_000_000), Posting("program:TCXH:funding", -10_000_000)],
                occurred_at=dt.datetime(2026, 10, 31, 3, tzinfo=dt.UTC),
            ),
        )
    database.engine.dispose()
    path = tmp_path / "statement.xml"
    path.write_bytes(statement("camt053.001.08")[0])
    out = tmp_path / "report.csv"
    result = runner.invoke(main, ["reconcile", str(path), "--account", "program:TCXH:budget", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "RC-0000000001  program:TCXH:budget  done" in result.output
    assert "missing_in_ledger" in result.output
    assert "pinned to checkpoint 1" in result.output
    assert "sealed: digest " in result.output
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert len(rows) == len(PLANTED)
    assert {r["category"] for r in rows} == {"missing_in_ledger"}

    again = runner.invoke(main, ["reconcile", str(path), "--account", "program:TCXH:budget"])
    assert again.exit_code == 0
    assert "imported before, as RC-0000000001" in again.output


def test_a_bad_statement_is_refused_with_its_locations(runner, tmp_path):
    assert runner.invoke(main, ["init"]).exit_code == 0
    path = tmp_path / "statement.xml"
    path.write_bytes(statement("camt053.001.02")[0].replace(b"camt.053.001.02", b"camt.052.001.02"))
    result = runner.invoke(main, ["reconcile", str(path), "--account", "program:TCXH:budget"])
    assert result.exit_code == 1
    assert "namespace_unsupported" in result.output
    assert "/Document" in result.output

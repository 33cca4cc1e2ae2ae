"""``chopay ledger`` and ``chopay keys rotate-ledger`` end to end on a fresh data directory."""

from __future__ import annotations

import json

import chopay.models  # noqa: F401  (every table, for the ORM)
from chopay.cli import main
from chopay.config import from_env
from chopay.db import Database
from payments.ledger import keys, services, tree
from payments.ledger.domain import Posting, TransactionSpec


def seed(n: int, start: int = 0) -> None:
    db = Database(from_env().database_url)
    with db.unit_of_work() as s:
        services.ensure_account(s, code="bank:settlement", kind="asset")
        services.ensure_account(s, code="equity:opening", kind="equity")
        for i in range(start, start + n):
            services.post(
                s,
                TransactionSpec(
                    f"cli-{i}",
                    "journal",
                    f"entry {i}",
                    [Posting("bank:settlement", 100 + i), Posting("equity:opening", -100 - i)],
                ),
            )
    db.engine.dispose()


def test_export_verify_proof_and_rotation(runner, tmp_path):
    assert runner.invoke(main, ["init"]).exit_code == 0
    seed(5)
    cp = runner.invoke(main, ["ledger", "checkpoint"])
    assert cp.exit_code == 0, cp.output
    assert "\n5\n" in cp.stdout
    settings = from_env()
    old_vkey = keys.load_signer(settings).vkey

    rotated = runner.invoke(main, ["keys", "rotate-ledger"])
    assert rotated.exit_code == 0, rotated.output
    new_vkey = keys.load_signer(settings).vkey
    assert new_vkey != old_vkey
    assert {v.vkey for v in keys.trusted_verifiers(settings)} == {old_vkey, new_vkey}
    seed(3, start=5)
    assert runner.invoke(main, ["ledger", "checkpoint"]).exit_code == 0

    out = tmp_path / "export.jsonl"
    exported = runner.invoke(main, ["ledger", "export", "-o", str(out)])
    assert exported.exit_code == 0, exported.output
    lines = out.read_text().splitlines()
    assert [json.loads(x)["type"] for x in lines].count("checkpoint") == 2

    both = runner.invoke(main, ["ledger", "verify", str(out), "--key", old_vkey, "--key", new_vkey])
    assert both.exit_code == 0, both.output
    assert "8" in both.output
    only_new = runner.invoke(main, ["ledger", "verify", str(out), "--key", new_vkey])
    assert only_new.exit_code == 1  # the first checkpoint was signed by the old key only

    live = runner.invoke(main, ["ledger", "verify", "--database"])
    assert live.exit_code == 0, live.output
    assert live.output.startswith("OK: 8 entries")

    proof = runner.invoke(main, ["ledger", "proof", "3"])
    assert proof.exit_code == 0, proof.output
    body = json.loads(proof.stdout)
    assert (body["index"], body["tree_size"], body["leaf"]["memo"]) == (3, 8, "entry 3")


def test_verify_database_reports_a_tampered_row(runner):
    assert runner.invoke(main, ["init"]).exit_code == 0
    seed(4)
    assert runner.invoke(main, ["ledger", "checkpoint"]).exit_code == 0
    db = Database(from_env().database_url)
    with db.engine.begin() as conn:
        conn.exec_driver_sql(
            "UPDATE ledger_transactions SET memo = 'changed' "
            "WHERE id = (SELECT transaction_id FROM ledger_entries WHERE idx = 2)"
        )
    db.engine.dispose()
    result = runner.invoke(main, ["ledger", "verify", "--database"])
    assert result.exit_code == 1
    assert "entry 2" in result.output


def test_verify_needs_a_file_or_database(runner):
    result = runner.invoke(main, ["ledger", "verify"])
    assert result.exit_code == 2
    assert "FILE or --database" in result.output


def test_checkpoint_without_a_key_is_refused(runner):
    assert runner.invoke(main, ["db", "upgrade"]).exit_code == 0
    result = runner.invoke(main, ["ledger", "checkpoint"])
    assert result.exit_code == 1
    assert "no ledger signing key" in result.output


def test_log_size_after_cli_checkpoint(runner):
    assert runner.invoke(main, ["init"]).exit_code == 0
    seed(2)
    runner.invoke(main, ["ledger", "checkpoint"])
    db = Database(from_env().database_url)
    with db.session() as s:
        assert tree.current_size(s) == 2
        assert tree.latest_checkpoint(s).size == 2
    db.engine.dispose()

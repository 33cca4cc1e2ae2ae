"""``chopay reconcile``: reconcile a statement file on the server, with the API's engine.

It imports the statement as ``POST /v1/reconciliations`` does (validated completely; the same
statement twice is the first import) and runs the reconciliation in this process instead of
the job queue, so statements larger than an HTTP body (a million lines) go through here. The
report is stored, pinned and sealed exactly like one made through the API.
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from payments.reconciliation.statements import PRESETS, StatementFormat

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from payments.reconciliation.models import Reconciliation


@click.command()
@click.argument("statement", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--account", required=True, help="Ledger account to reconcile against, e.g. program:TCXH:budget."
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice([f.value for f in StatementFormat]),
    help="Statement format (default: recognised from the file).",
)
@click.option("--preset", type=click.Choice(sorted(PRESETS)), default="bank_simulator", show_default=True)
@click.option("--from", "period_from", type=click.DateTime(["%Y-%m-%d"]), help="CSV only: first day.")
@click.option("--to", "period_to", type=click.DateTime(["%Y-%m-%d"]), help="CSV only: last day.")
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write the report CSV here."
)
def reconcile(
    statement: Path,
    account: str,
    fmt: str | None,
    preset: str,
    period_from: dt.datetime | None,
    period_to: dt.datetime | None,
    output: Path | None,
) -> None:
    """Reconcile a bank STATEMENT against a ledger account; store, pin and seal the report."""
    import chopay.models  # noqa: F401  (every table, for the ORM)
    from chopay.config import from_env
    from chopay.crypto import DATA_KEYS_FILE, DataKeys
    from chopay.db import Database
    from payments.ledger import jobs as ledger_jobs
    from payments.reconciliation import pipeline, report, services
    from payments.reconciliation.errors import ReconciliationError, StatementError

    if (period_from is None) != (period_to is None):
        raise click.UsageError("give both --from and --to, or neither")
    settings = from_env()
    keys = DataKeys.load(settings.keys_dir / DATA_KEYS_FILE)
    upload = services.Upload(
        data=statement.read_bytes(),
        account=account,
        format=None if fmt is None else StatementFormat(fmt),
        preset=preset,
        period=None if period_from is None or period_to is None else (period_from.date(), period_to.date()),
    )
    database = Database(settings.database_url)
    try:
        try:
            parsed = upload.parse()
            with database.unit_of_work() as s:
                rec, created = services.import_statement(s, upload, parsed, keys, user_id=None, enqueue=False)
        except StatementError as exc:
            click.echo(f"error: {exc.code}: the statement is rejected", err=True)
            for problem in exc.problems:
                click.echo(f"  {problem.location or '-'}: {problem.code}: {problem.message}", err=True)
            sys.exit(1)
        except ReconciliationError as exc:
            raise click.ClickException(f"{exc.code}: {exc.detail}") from None
        if not created:
            click.echo(f"the statement was imported before, as {rec.public_id}", err=True)
        pipeline.run(database, settings, keys, rec.id, statement=parsed if created else None)
        ledger_jobs.seal(database, settings, force=True)  # seal the attestation now
        with database.read_session() as s:
            rec = services.get(s, rec.id)
            click.echo(_summary(s, rec))
            if output is not None and rec.status == "done":
                with output.open("w", encoding="utf-8", newline="") as out:
                    for chunk in report.csv_chunks(s, rec, keys):
                        out.write(chunk)
                click.echo(f"wrote {output} ({rec.item_count} items)")
        if rec.status != "done":
            sys.exit(1)
    finally:
        database.engine.dispose()


def _summary(session: Session, rec: Reconciliation) -> str:
    """Return the text summary of a reconciliation."""
    import sqlalchemy as sa

    from payments.ledger.domain import public_id
    from payments.ledger.models import Entry
    from payments.reconciliation import services
    from payments.reconciliation.domain import Category
    from payments.reconciliation.models import Total

    st = services.statement_of(session, rec)
    lines = [
        f"{rec.public_id}  {rec.account}  {rec.status}  statement {st.period_from}..{st.period_to}, "
        f"{st.line_count:,} lines ({st.format})"
    ]
    if rec.status == "failed":
        return "\n".join([*lines, f"failed: {rec.error_code}: {rec.error_detail}"])
    assert rec.checkpoint_root is not None
    lines.append(f"pinned to checkpoint {rec.checkpoint_size} (root {rec.checkpoint_root.hex()})")
    totals = {
        t.category: t for t in session.scalars(sa.select(Total).where(Total.reconciliation_id == rec.id))
    }
    lines.append(f"{'category':<18} {'count':>9} {'bank':>18} {'ledger':>18} {'difference':>16}")
    for c in Category:
        t = totals.get(c.value)
        if t is not None and t.count:
            lines.append(
                f"{c.value:<18} {t.count:>9,} {t.bank_amount:>18,} {t.ledger_amount:>18,} {t.difference:>16,}"
            )
    assert rec.ledger_closing is not None
    verdict = "fully explained" if rec.fully_explained else "NOT fully explained"
    lines.append(
        f"balance: statement closing {st.closing_balance:,}, ledger closing {rec.ledger_closing:,}, "
        f"difference {st.closing_balance - rec.ledger_closing:,}, unexplained {rec.unexplained:,} ({verdict})"
    )
    assert rec.attestation_id is not None
    index = session.scalar(sa.select(Entry.idx).where(Entry.transaction_id == rec.attestation_id))
    lines.append(f"sealed: digest {rec.report_digest} in {public_id(rec.attestation_id)} (log index {index})")
    return "\n".join(lines)

"""``chopay ledger``: export, verify, checkpoint and prove the signed ledger."""

from __future__ import annotations

import sys
from pathlib import Path

import click


@click.group()
def ledger() -> None:
    """Export, verify and prove the signed ledger."""


@ledger.command()
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="File to write the JSON Lines export to ('-' for stdout).",
)
@click.option(
    "--from-index",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="First entry index to export.",
)
def export(output: Path, from_index: int) -> None:
    """Write the log (entries and signed checkpoints) as JSON Lines for auditors."""
    from chopay.cli.users import open_session
    from payments.ledger import entries

    count = 0
    with open_session() as s:
        out = sys.stdout if str(output) == "-" else output.open("w", encoding="utf-8")
        try:
            for line in entries.export_lines(s, from_index=from_index):
                out.write(line)
                count += 1
        finally:
            if out is not sys.stdout:
                out.close()
    click.echo(f"wrote {count} lines to {output}", err=True)


@ledger.command(context_settings={"ignore_unknown_options": False})
@click.argument("file", required=False, type=click.Path(exists=True, dir_okay=False))
@click.option("--key", "vkeys", multiple=True, help="Trusted verifier key (C2SP vkey); repeatable.")
@click.option(
    "--trusted-checkpoint",
    type=click.Path(exists=True, dir_okay=False),
    help="A signed note the export must be consistent with.",
)
@click.option("--database", is_flag=True, help="Verify the live database instead of a file.")
def verify(file: str | None, vkeys: tuple[str, ...], trusted_checkpoint: str | None, database: bool) -> None:
    """Verify an export offline (or the live database): order, balance, roots and signatures.

    Exits 0 and prints the verified size and root, or exits 1 naming the first bad entry.
    The same check runs without Flask or a database as
    ``python -m payments.ledger.verify FILE --key VKEY``.
    """
    if database == (file is not None):
        raise click.UsageError("give either an export FILE or --database")
    if database:
        from chopay.cli.users import open_session
        from chopay.config import from_env
        from payments.ledger import audit, keys
        from payments.ledger.note import Verifier

        settings = from_env()
        verifiers = [Verifier.from_vkey(v) for v in vkeys] or keys.trusted_verifiers(settings)
        with open_session(settings) as s:
            result = audit.verify_database(s, verifiers)
        click.echo(result.describe())
        sys.exit(0 if result.ok else 1)
    from payments.ledger.verify import main as verify_main

    argv = [str(file)]
    for v in vkeys:
        argv += ["--key", v]
    if trusted_checkpoint:
        argv += ["--trusted-checkpoint", trusted_checkpoint]
    sys.exit(verify_main(argv))


@ledger.command()
def checkpoint() -> None:
    """Sequence pending transactions and sign a checkpoint now; print the signed note."""
    import chopay.models  # noqa: F401  (every table, for the ORM)
    from chopay.config import from_env
    from chopay.db import Database
    from payments.ledger import jobs, keys, tree

    settings = from_env()
    if keys.load_signer(settings) is None:
        raise click.ClickException("no ledger signing key: run `chopay keys generate`")
    database = Database(settings.database_url)
    try:
        added, _ = jobs.seal(database, settings, force=True)
        with database.read_session() as s:
            latest = tree.latest_checkpoint(s)
    finally:
        database.engine.dispose()
    click.echo(f"sequenced {added} new entries", err=True)
    click.echo(latest.note if latest is not None else "(the ledger is empty)", nl=False)


@ledger.command()
@click.argument("index", type=click.IntRange(min=0))
@click.option("--tree-size", type=click.IntRange(min=1), help="Tree size (default: latest checkpoint).")
def proof(index: int, tree_size: int | None) -> None:
    """Print an entry's leaf and its inclusion proof as JSON."""
    import json

    from chopay.cli.users import open_session
    from payments.ledger import tree

    with open_session() as s:
        p = tree.inclusion(s, index, tree_size)
    click.echo(
        json.dumps(
            {
                "index": p["index"],
                "tree_size": p["tree_size"],
                "leaf": p["leaf"],
                "leaf_hash": p["leaf_hash"].hex(),
                "proof": [h.hex() for h in p["proof"]],
                "root": p["root"].hex(),
            },
            indent=2,
            ensure_ascii=False,
        )
    )

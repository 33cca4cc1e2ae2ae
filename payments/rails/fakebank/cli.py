"""``chopay fakebank``: run the bank simulator and act on it.

``serve`` runs the simulator. ``pay`` and ``simulate`` talk to the running simulator over
HTTP (``--bank-url``, env ``FAKEBANK_URL``), because it owns notification delivery and its
retries. ``accounts``, ``fund``, ``statement`` and ``return`` work on the database file
(``--db``, env ``FAKEBANK_DB``) and need no running server. Options also read
``FAKEBANK_<COMMAND>_<OPTION>`` from the environment (``FAKEBANK_SERVE_SETTLE_MS``...), and
the shared ones plain names: ``FAKEBANK_DB``, ``FAKEBANK_URL``, ``FAKEBANK_NOTIFY_URL`` and
``FAKEBANK_CONNECTORS`` (space-separated ``NAME=FORMAT:SECRET[@URL]``).
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

import click
import httpx

from payments.rails.fakebank import config as cfg

DB = click.option(
    "--db",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("var/fakebank.db"),
    show_default=True,
    envvar="FAKEBANK_DB",
    help="The simulator's SQLite database.",
)
BANK_URL = click.option(
    "--bank-url",
    default=f"http://127.0.0.1:{cfg.DEFAULT_PORT}",
    show_default=True,
    envvar="FAKEBANK_URL",
    help="The running simulator.",
)
RATE = click.FloatRange(0.0, 1.0)


@click.group(context_settings={"auto_envvar_prefix": "FAKEBANK"})
def fakebank() -> None:
    """Run the bank simulator (payOS Payouts API, accounts, notifications, statements)."""


@fakebank.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=cfg.DEFAULT_PORT,
    show_default=True,
    help="Port (0: any free one).",
)
@DB
@click.option(
    "--workers", type=click.IntRange(1, 16), default=1, show_default=True, help="gunicorn processes."
)
@click.option(
    "--threads", type=click.IntRange(1, 64), default=8, show_default=True, help="Threads per process."
)
@click.option("--client-id", default=cfg.DEMO_CLIENT_ID, show_default=True, help="Expected x-client-id.")
@click.option("--api-key", default=cfg.DEMO_API_KEY, show_default=True, help="Expected x-api-key.")
@click.option(
    "--checksum-key", default=cfg.DEMO_CHECKSUM_KEY, show_default=True, help="Signs requests/answers."
)
@click.option(
    "--error-rate", type=RATE, default=0.0, show_default=True, help="Share of 500s before processing."
)
@click.option(
    "--drop-rate", type=RATE, default=0.0, show_default=True, help="Share of payouts answered by a hang-up."
)
@click.option(
    "--latency-ms", type=click.IntRange(0), default=0, show_default=True, help="Delay before each request."
)
@click.option(
    "--settle-ms", type=click.IntRange(0), default=0, show_default=True, help="Time PROCESSING lasts."
)
@click.option("--seed", type=int, default=None, help="Seed of the fault and account generators.")
@click.option("--seed-accounts", type=click.IntRange(0), default=0, help="Open N accounts with fake names.")
@click.option("--strict-accounts", is_flag=True, help="Only seeded and imported accounts exist.")
@click.option(
    "--transfer-limit",
    type=click.IntRange(1),
    default=cfg.DEFAULT_TRANSFER_LIMIT,
    show_default=True,
    help="Largest transfer in dong; above it, LIMIT_EXCEEDED.",
)
@click.option(
    "--source-balance",
    type=click.IntRange(0),
    default=cfg.DEFAULT_SOURCE_BALANCE,
    show_default=True,
    help="Opening balance of the payout account (new database only).",
)
@click.option(
    "--notify-url",
    default=cfg.DEFAULT_NOTIFY_URL,
    show_default=True,
    envvar="FAKEBANK_NOTIFY_URL",
    help="chopay's base URL.",
)
@click.option(
    "--connector",
    "connectors",
    multiple=True,
    envvar="FAKEBANK_CONNECTORS",
    help="NAME=FORMAT:SECRET[@URL] (repeatable).",
)
@click.option(
    "--retry-base-ms", type=click.IntRange(1), default=500, show_default=True, help="First retry delay."
)
@click.option(
    "--max-attempts", type=click.IntRange(1), default=10, show_default=True, help="Attempts per notification."
)
def serve(**options: Any) -> None:
    """Serve the simulator with gunicorn; print its address and credentials."""
    from payments.rails.fakebank.server import FakebankServer

    raw = options.pop("connectors")
    parsed = [cfg.parse_connector(c) for item in raw for c in item.split()]
    config = cfg.FakebankConfig(connectors=tuple(parsed), **options)
    _prepare(config)
    sys.argv = ["chopay fakebank serve"]
    FakebankServer(config, [f"{c.name} ({c.format})" for c in parsed]).run()


def _prepare(config: cfg.FakebankConfig) -> None:
    from payments.rails.fakebank import accounts
    from payments.rails.fakebank.admin import save_connector
    from payments.rails.fakebank.models import open_db

    engine = open_db(config.db)
    with engine.begin() as conn:
        accounts.ensure_house_accounts(conn, config.source_balance)
        if config.seed_accounts:
            accounts.seed(conn, config.seed_accounts, seed=config.seed)
        for connector in config.connectors:
            save_connector(conn, connector)
    engine.dispose()


@fakebank.group()
def accounts() -> None:
    """Open, import and show simulator accounts."""


@accounts.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@DB
def import_accounts(file: Path, db: Path) -> None:
    """Import accounts from CSV: bin,account_number,holder_name,status,balance (all or nothing)."""
    from payments.rails.fakebank import accounts as acct
    from payments.rails.fakebank.models import open_db

    engine = open_db(db)
    try:
        with engine.begin() as conn:
            acct.ensure_house_accounts(conn, cfg.DEFAULT_SOURCE_BALANCE)
            count = acct.import_file(conn, file)
    except acct.AccountImportError as exc:
        raise click.ClickException(f"{file}: {exc}; nothing was imported") from None
    click.echo(f"imported {count} accounts into {db}")


@accounts.command("seed")
@click.argument("count", type=click.IntRange(1, 1_000_000))
@DB
@click.option("--seed", type=int, default=None, help="Seed of the generator.")
def seed_accounts(count: int, db: Path, seed: int | None) -> None:
    """Open COUNT accounts with obviously fake names (every sixth in a documented state)."""
    from payments.rails.fakebank import accounts as acct
    from payments.rails.fakebank.models import open_db

    with open_db(db).begin() as conn:
        acct.ensure_house_accounts(conn, cfg.DEFAULT_SOURCE_BALANCE)
        made = acct.seed(conn, count, seed=seed)
    click.echo(acct.describe(made[:20]))
    click.echo(f"opened {len(made)} accounts in {db}")


@accounts.command("show")
@click.argument("bin_", metavar="BIN")
@click.argument("number")
@DB
def show_account(bin_: str, number: str, db: Path) -> None:
    """Show one account."""
    from payments.rails.fakebank import accounts as acct
    from payments.rails.fakebank.models import open_db

    with open_db(db).connect() as conn:
        found = acct.get(conn, bin_, number)
    if found is None:
        raise click.ClickException(f"no account {number} at {bin_}")
    click.echo(acct.describe([found]))


@fakebank.command()
@click.argument("amount", type=click.IntRange(1))
@DB
def fund(amount: int, db: Path) -> None:
    """Credit the payout (source) account with AMOUNT dong."""
    from payments.rails.fakebank import accounts as acct
    from payments.rails.fakebank import transfers as tf
    from payments.rails.fakebank.models import open_db

    with open_db(db).begin() as conn:
        acct.ensure_house_accounts(conn, cfg.DEFAULT_SOURCE_BALANCE)
        source = acct.get(conn, cfg.SOURCE_BIN, cfg.SOURCE_NUMBER)
        external = acct.get(conn, cfg.EXTERNAL_BIN, cfg.EXTERNAL_NUMBER)
        assert source is not None
        assert external is not None
        tf.move_many(conn, [tf.Move("funding", external.id, source.id, amount, "FUNDING")])
        after = acct.get(conn, cfg.SOURCE_BIN, cfg.SOURCE_NUMBER)
    assert after is not None
    click.echo(f"source {cfg.SOURCE_BIN} {cfg.SOURCE_NUMBER} balance {after.balance:,} VND")


@fakebank.command()
@click.option("--to-bin", required=True, help="BIN of the account credited.")
@click.option("--to-account", required=True, help="Account number credited.")
@click.option("--amount", type=click.IntRange(1), required=True, help="Amount in dong.")
@click.option("--memo", required=True, help="Transfer memo (what the payer typed).")
@click.option(
    "--format", "fmt", type=click.Choice(["chopay", "sepay", "payos"]), help="Notify that connector."
)
@click.option("--connector", help="Connector to notify (default: the one of --format, or the only one).")
@click.option("--payer-name", default="NGUYEN VAN KHACH TEST", show_default=True)
@click.option("--code", help="SePay payment code to put in the notification.")
@click.option("--duplicate", type=click.IntRange(0, 10), default=0, help="Deliver N extra identical copies.")
@click.option("--late", "late_s", type=click.IntRange(0), default=0, help="Sign as if sent S seconds ago.")
@click.option(
    "--delay", "delay_s", type=click.FloatRange(0), default=0.0, help="Hold delivery for S seconds."
)
@BANK_URL
def pay(bank_url: str, fmt: str | None, **options: Any) -> None:
    """Pay money into an account; the simulator notifies chopay until it acknowledges."""
    body = {**options, "format": fmt}
    response = _post(bank_url, "/admin/pay", body)
    click.echo(json.dumps(response, ensure_ascii=False))


def _post(bank_url: str, path: str, body: dict[str, Any]) -> Any:
    try:
        response = httpx.post(bank_url.rstrip("/") + path, json=body, timeout=30)
    except httpx.HTTPError as exc:
        raise click.ClickException(f"the simulator at {bank_url} did not answer: {exc}") from None
    if not response.is_success:
        detail = (
            response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
        )
        raise click.ClickException(
            f"{detail.get('error', response.status_code)}: {detail.get('message', '')}"
        )
    return response.json()


@fakebank.command()
@click.argument("bin_", metavar="BIN")
@click.argument("number")
@click.option(
    "--from", "start", type=click.DateTime(["%Y-%m-%d"]), help="First day (Vietnam), default today."
)
@click.option("--to", "end", type=click.DateTime(["%Y-%m-%d"]), help="Last day (Vietnam), default today.")
@click.option(
    "--format", "fmt", type=click.Choice(["csv", "camt053", "mt940"]), default="csv", show_default=True
)
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="File (default stdout)."
)
@DB
def statement(
    bin_: str,
    number: str,
    start: dt.datetime | None,
    end: dt.datetime | None,
    fmt: str,
    output: Path | None,
    db: Path,
) -> None:
    """Export an account's statement for a range of days."""
    from payments.rails.fakebank import statements
    from payments.rails.fakebank.models import open_db

    today = dt.datetime.now(statements.VIETNAM).date()
    first = start.date() if start else today
    last = end.date() if end else today
    with open_db(db).connect() as conn:
        try:
            found = statements.build(conn, bin_, number, first, last)
        except (LookupError, ValueError) as exc:
            raise click.ClickException(str(exc)) from None
    text = statements.render(found, fmt)
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        click.echo(
            f"wrote {output} ({len(found.lines)} lines, opening {found.opening:,}, closing {found.closing:,})"
        )


@fakebank.command("return")
@click.argument("reference")
@click.option("--reason", default="returned by the beneficiary bank", show_default=True)
@DB
def return_payout(reference: str, reason: str, db: Path) -> None:
    """Return a paid transfer: a credit back to the source, state REVERSED."""
    from chopay.db import utcnow
    from payments.rails.fakebank import payouts
    from payments.rails.fakebank.models import open_db
    from payments.rails.fakebank.protocol import ProtocolError

    try:
        with open_db(db).begin() as conn:
            result = payouts.return_transfer(conn, reference, reason, utcnow())
    except ProtocolError as exc:
        raise click.ClickException(exc.desc) from None
    click.echo(json.dumps(result))


@fakebank.command()
@click.option(
    "--merchants",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="CSV of bin,account_number[,connector] to pay into.",
)
@click.option(
    "--rate", type=click.FloatRange(0.1, 1000), default=2.0, show_default=True, help="Payments per second."
)
@click.option(
    "--duration", type=click.FloatRange(0.1, 86_400), default=10.0, show_default=True, help="Seconds."
)
@click.option("--seed", type=int, default=None, help="Seed of the traffic generator.")
@BANK_URL
def simulate(merchants: Path, rate: float, duration: float, seed: int | None, bank_url: str) -> None:
    """Generate market traffic: random payments into the merchants' accounts."""
    from payments.rails.fakebank.simulate import load_merchants, run

    try:
        stalls = load_merchants(merchants.read_text(encoding="utf-8-sig"))
    except ValueError as exc:
        raise click.ClickException(f"{merchants}: {exc}") from None
    click.echo(json.dumps(run(bank_url, stalls, rate=rate, duration=duration, seed=seed)))

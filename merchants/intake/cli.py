"""``chopay connectors`` (bank-notification credentials) and ``chopay events`` (live streams)."""

from __future__ import annotations

import datetime as dt
import os
import sys

import click

from chopay.cli.users import open_session
from chopay.config import from_env
from chopay.crypto import DATA_KEYS_FILE, DataKeys
from merchants.intake import connectors as svc

PATHS = {
    "chopay": "POST /v1/bank-notifications  (X-Chopay-Connector: {name})",
    "sepay": "POST /v1/bank-notifications/sepay/{name}",
    "payos": "POST /v1/bank-notifications/payos/{name}",
}
SECRET_NAMES = {"chopay": "signing secret", "sepay": "API key", "payos": "checksum key"}


def _keys() -> DataKeys:
    path = from_env().keys_dir / DATA_KEYS_FILE
    if not path.exists():
        raise click.ClickException(
            f"no data keys at {path}: run `chopay keys generate` (or `chopay init`) first"
        )
    return DataKeys.load(path)


def _declared() -> dict[str, svc.Connector]:
    try:
        return svc.parse_setting(from_env().bank_connectors)
    except ValueError as exc:
        raise click.ClickException(f"CHOPAY_BANK_CONNECTORS: {exc}") from None


def _print_issued(issued: svc.Issued, verb: str) -> None:
    click.echo(f"connector {issued.name} ({issued.format}) {verb}")
    click.echo(f"  {SECRET_NAMES[issued.format] + ':':16} {issued.secret}")
    kept = "only its SHA-256" if issued.format == "sepay" else "it encrypted"
    click.echo(f"  (shown only now: chopay keeps {kept})")
    click.echo(f"  {'webhook:':16} {PATHS[issued.format].format(name=issued.name)}")
    if issued.bin:
        click.echo(f"  {'bin:':16} {issued.bin}")


@click.group()
def connectors() -> None:
    """Manage the connectors that report bank payments (chopay, SePay, payOS formats)."""


@connectors.command("add")
@click.argument("name")
@click.option("--format", "fmt", required=True, type=click.Choice(svc.FORMATS), help="Notification format.")
@click.option("--bin", "bin_", help="BIN of the accounts it reports, for formats that do not say (payOS).")
def add(name: str, fmt: str, bin_: str | None) -> None:
    """Create a connector and print its new credentials once."""
    keys = _keys()
    with open_session() as s:
        issued = svc.add(s, keys, name=name, fmt=fmt, bin_=bin_, declared=tuple(_declared()))
    _print_issued(issued, "added")


@connectors.command("list")
def list_() -> None:
    """List connectors and the hints of their live secrets (never the secrets)."""
    with open_session() as s:
        found = svc.list_connectors(s, _declared())
    if not found:
        click.echo("no connectors: add one with `chopay connectors add NAME --format chopay|sepay|payos`")
        return
    click.echo(f"{'NAME':24} {'FORMAT':7} {'BIN':7} {'SOURCE':9} LIVE SECRETS")
    for c in found:
        secrets = ", ".join(
            h + (f" (until {e:%Y-%m-%d %H:%M} UTC)" if e is not None else "")
            for h, e in zip(c.live, c.expires or (None,) * len(c.live), strict=False)
        )
        click.echo(f"{c.name:24} {c.format:7} {c.bin or '-':7} {c.source:9} {secrets or '(none)'}")


@connectors.command("rotate")
@click.argument("name")
@click.option(
    "--grace",
    default=24 * 3600,
    show_default=True,
    type=click.IntRange(min=0),
    help="Seconds the previous secrets stay live, for the sender to switch.",
)
def rotate(name: str, grace: int) -> None:
    """Give a connector a new secret; the previous ones stay live for the grace period."""
    keys = _keys()
    with open_session() as s:
        issued = svc.rotate(s, keys, name, grace=dt.timedelta(seconds=grace))
    _print_issued(issued, "rotated")
    click.echo(f"  {'previous:':16} {issued.expiring} secret(s) stay live for {grace} s")


@click.command()
@click.option("--bind", metavar="HOST:PORT", help="Listen address (default CHOPAY_EVENTS_BIND).")
def events(bind: str | None) -> None:
    """Serve the live payment streams with gunicorn's gevent workers (route /v1/merchants/*/events here)."""
    from gunicorn.app.wsgiapp import WSGIApplication

    from chopay import shared_metrics

    if not from_env().redis_url:
        raise click.ClickException(
            "chopay events needs Redis (CHOPAY_REDIS_URL) to hear the payments other processes record; "
            "without Redis, `chopay serve` streams events itself."
        )
    if bind:
        os.environ["CHOPAY_EVENTS_BIND_OVERRIDE"] = bind
    shared_metrics.share_or_exit(from_env().data_dir / "metrics" / "events")
    sys.argv = ["chopay events", "--config", "python:merchants.intake.gunicorn_events", "wsgi:app"]
    WSGIApplication("%(prog)s [OPTIONS] [APP_MODULE]").run()

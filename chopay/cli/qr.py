"""``chopay qr``: encode, decode and render VietQR codes, and look up banks.

These commands use the ``qr`` library only: they need no database and no configuration.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from qr import (
    Bank,
    BuildError,
    Payload,
    QRError,
    build_vietqr,
    decode,
    directory_info,
    render_png,
    render_svg,
    search_banks,
)
from qr.schemes import SERVICES


@click.group()
def qr() -> None:
    """Encode, decode and render VietQR payment codes; look up banks."""


@qr.command()
@click.option("--bin", "bin_", required=True, metavar="BIN", help="Beneficiary bank BIN, e.g. 970436.")
@click.option("--account", required=True, help="Account number (card number for QRIBFTTC).")
@click.option("--amount", type=click.IntRange(min=1), help="Amount in dong; makes the code dynamic.")
@click.option("--purpose", metavar="TEXT", help="Payment memo (62-08), at most 25 characters once cleaned.")
@click.option("--name", metavar="TEXT", help="Merchant name; Vietnamese text also fills tag 64.")
@click.option("--city", metavar="TEXT", help="Merchant city; Vietnamese text also fills tag 64.")
@click.option(
    "--service",
    type=click.Choice(list(SERVICES)),
    default="QRIBFTTA",
    show_default=True,
    help="NAPAS service.",
)
@click.option("--bill", metavar="TEXT", help="Bill number (62-01).")
@click.option("--reference", metavar="TEXT", help="Reference label (62-05).")
@click.option("--mcc", metavar="CODE", help="Merchant category code, four digits.")
@click.option(
    "--initiation",
    type=click.Choice(["static", "dynamic"]),
    help="Override static/dynamic (default: by amount).",
)
def encode(
    bin_: str,
    account: str,
    amount: int | None,
    purpose: str | None,
    name: str | None,
    city: str | None,
    service: str,
    bill: str | None,
    reference: str | None,
    mcc: str | None,
    initiation: str | None,
) -> None:
    """Build a VietQR payload and print it.

    Exits 1 naming the field at fault if any value would make a code banking apps reject.
    """
    vietnamese_name = name is not None and not name.isascii()
    vietnamese_city = city is not None and not city.isascii()
    try:
        payload = build_vietqr(
            bin=bin_,
            account=account,
            service=service,
            amount=amount,
            purpose=purpose,
            bill_number=bill,
            reference=reference,
            mcc=mcc,
            initiation=initiation,
            merchant_name=None if vietnamese_name else name,
            merchant_city=None if vietnamese_city else city,
            name_vi=name if vietnamese_name else None,
            city_vi=city if vietnamese_city else None,
        )
    except BuildError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    click.echo(payload)


@qr.command("decode")
@click.argument("payload")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
def decode_command(payload: str, as_json: bool) -> None:
    """Decode a payload ('-' reads stdin) and print its fields and issues.

    Exits 1 on structurally broken input, printing the error code and character offset.
    """
    text = _read_payload(payload)
    try:
        decoded = decode(text)
    except QRError as exc:
        if as_json:
            click.echo(json.dumps({"valid": False, "error": exc.to_dict()}, ensure_ascii=False))
        else:
            click.echo(f"invalid: {exc.code} at offset {exc.offset}: {exc.message}", err=True)
        sys.exit(1)
    if as_json:
        click.echo(json.dumps(decoded.to_dict(), ensure_ascii=False))
    else:
        click.echo(_describe(decoded))


@qr.command()
@click.argument("payload")
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="File to write; .png or .svg picks the format.",
)
@click.option(
    "--box-size", type=click.IntRange(1, 100), default=10, show_default=True, help="Pixels per module."
)
@click.option(
    "--border", type=click.IntRange(0, 40), default=4, show_default=True, help="Quiet zone, in modules."
)
@click.option(
    "--ec", type=click.Choice(["L", "M", "Q", "H"]), default="M", show_default=True, help="Error correction."
)
def render(payload: str, output: Path, box_size: int, border: int, ec: str) -> None:
    """Render a payload ('-' reads stdin) as a PNG or SVG QR code.

    The payload is decoded first; broken input exits 1 with its error code and offset.
    """
    suffix = output.suffix.lower()
    if suffix not in (".png", ".svg"):
        raise click.BadParameter("the file name must end in .png or .svg", param_hint="--output")
    text = _read_payload(payload)
    options: dict[str, Any] = {"box_size": box_size, "border": border, "error_correction": ec}
    try:
        if suffix == ".png":
            output.write_bytes(render_png(text, **options))
        else:
            output.write_text(render_svg(text, **options), encoding="utf-8")
    except QRError as exc:
        click.echo(f"invalid: {exc.code} at offset {exc.offset}: {exc.message}", err=True)
        sys.exit(1)
    click.echo(f"wrote {output} ({output.stat().st_size} bytes)")


@qr.command()
@click.argument("query", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array instead of a table.")
def banks(query: tuple[str, ...], as_json: bool) -> None:
    """List banks and e-wallets in the VietQR directory, or those matching QUERY.

    QUERY matches a BIN, a code or a name (current or former), ignoring case and diacritics.
    Exits 1 when nothing matches.
    """
    text = " ".join(query)
    found = search_banks(text)
    if as_json:
        click.echo(json.dumps([bank.to_dict() for bank in found], ensure_ascii=False))
    else:
        for bank in found:
            click.echo(_bank_line(bank))
        if not text:
            info = directory_info()
            click.echo(f"{info['count']} entries; source: {info['source']} (as of {info['as_of']})")
    if not found:
        click.echo(f"no bank matches {text!r}", err=True)
        sys.exit(1)


def _read_payload(argument: str) -> str:
    # Scanners and terminals add line breaks and padding; no valid payload has either at its ends.
    return (sys.stdin.read() if argument == "-" else argument).strip()


def _bank_line(bank: Bank) -> str:
    flags = []
    if not bank.receives_transfers:
        flags.append("no transfers")
    if bank.account_lookup:
        flags.append("name lookup")
    if bank.account_prefix:
        flags.append(f"accounts {bank.account_prefix}...")
    if bank.aliases:
        flags.append("also " + ", ".join(bank.aliases))
    note = f"  [{'; '.join(flags)}]" if flags else ""
    return f"{bank.bin or '-':<7}{bank.code:<13}{bank.short_name:<20}{bank.name}{note}"


def _describe(payload: Payload) -> str:
    bank = payload.bank
    bank_text = payload.bin
    if bank is not None:
        bank_text = f"{payload.bin} {bank.code} {bank.short_name}"
    service = payload.service
    if service is not None:
        service = f"{service} ({SERVICES.get(service, 'unknown service')})"
    rows: list[tuple[str, str | None]] = [
        ("scheme", payload.scheme),
        ("initiation", payload.initiation),
        ("bank", bank_text),
        ("account", payload.account),
        ("service", service),
        ("amount", _money(payload)),
        ("currency", payload.currency),
        ("country", payload.country),
        ("mcc", payload.mcc),
        ("merchant name", payload.merchant_name),
        ("merchant city", payload.merchant_city),
        ("postal code", payload.postal_code),
        ("name (64)", payload.name_alt),
        ("city (64)", payload.city_alt),
    ]
    rows.extend((name.replace("_", " "), value) for name, value in payload.additional.to_dict().items())
    for account in payload.merchant_accounts:
        if account.scheme != "vietqr":
            rows.append(
                (f"template {account.tag}", f"{account.guid or 'no GUID'} ({account.scheme or 'unknown'})")
            )
    rows.append(("crc", payload.crc))
    lines = [f"{name:<15}{value}" for name, value in rows if value is not None]
    if payload.issues:
        lines.append(f"issues         {len(payload.issues)}")
        lines.extend(f"  {issue.code:<21}{issue.tag or '-':<10}{issue.message}" for issue in payload.issues)
    else:
        lines.append("issues         none")
    return "\n".join(lines)


def _money(payload: Payload) -> str | None:
    if payload.amount is None:
        return None
    unit = "VND" if payload.currency == "704" else f"in currency {payload.currency or '?'}"
    return f"{payload.amount:,} {unit}"

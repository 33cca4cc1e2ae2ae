"""``chopay keys``: the ledger signing key and the data-encryption keys."""

from __future__ import annotations

import os
from pathlib import Path

import click

from chopay.config import Settings, from_env
from chopay.crypto import DATA_KEYS_FILE, DataKeys

LEDGER_KEY_FILE = "ledger-signing.key"
LEDGER_VKEY_FILE = "ledger-verifier.vkey"


def write_secret(path: Path, text: str) -> None:
    """Create ``path`` with mode 0600 holding ``text``; never overwrite."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)


def ensure_keys(settings: Settings) -> list[str]:
    """Create whichever keys are missing under the keys directory; describe what was done."""
    from payments.ledger.note import Signer

    keys_dir = settings.keys_dir
    out: list[str] = []
    signing = keys_dir / LEDGER_KEY_FILE
    if signing.exists():
        out.append(f"ledger signing key: kept {signing}")
    else:
        signer = Signer.generate(settings.ledger_origin)
        write_secret(signing, signer.to_skey() + "\n")
        (keys_dir / LEDGER_VKEY_FILE).write_text(signer.vkey + "\n")
        out.append(f"ledger signing key: created {signing}")
        out.append(f"ledger verifier key: {signer.vkey}")
    data = keys_dir / DATA_KEYS_FILE
    if data.exists():
        out.append(f"data keys: kept {data}")
    else:
        write_secret(data, DataKeys.generate().dump() + "\n")
        out.append(f"data keys: created {data}")
    return out


@click.group()
def keys() -> None:
    """Manage the ledger signing key and the data-encryption keys."""


@keys.command()
def generate() -> None:
    """Create the ledger signing key and data keys under CHOPAY_KEYS_DIR if they are missing."""
    for line in ensure_keys(from_env()):
        click.echo(line)


@keys.command("rotate-ledger")
def rotate_ledger() -> None:
    """Install a new ledger signing key; the old verifier key stays trusted for old checkpoints."""
    from payments.ledger.keys import rotate

    settings = from_env()
    new = rotate(settings)
    click.echo(f"ledger signing key rotated; new verifier key: {new.vkey}")


@keys.command("rotate-data")
@click.option(
    "--now", is_flag=True, help="Re-encrypt in this process and wait, instead of in the background."
)
def rotate_data(now: bool) -> None:
    """Make a new data key active and re-encrypt every stored personal value under it.

    The old keys stay in the key file, so every value stays readable while this runs. Without
    --now the job runs in the background: on `chopay worker` (Redis) or inside `chopay serve`,
    within CHOPAY_SWEEP_INTERVAL seconds. Copy the key file to every host first.
    """
    from chopay import create_app, jobs, keyrotation
    from chopay.db import get_db

    settings = from_env()
    rotated = keyrotation.add_key(settings.keys_dir)
    click.echo(f"data key {rotated.active} is now active ({len(rotated.keys) - 1} older key(s) kept to read)")
    app = create_app(settings)
    with app.app_context():
        with get_db(app).unit_of_work() as s:
            keyrotation.request(s, rotated.active)
        if now:
            done = keyrotation.run(get_db(app), rotated)
            click.echo(f"re-encrypted {done.reencrypted} value(s); {done.unreadable} could not be opened")
        elif settings.redis_url:
            jobs.enqueue(keyrotation.JOB)
            click.echo("re-encryption queued for `chopay worker`")
        else:
            click.echo("`chopay serve` re-encrypts in the background (or run this again with --now)")


@keys.command("data-status")
def data_status() -> None:
    """Count the stored personal values per column and per data key."""
    from chopay import create_app
    from chopay.db import get_db
    from chopay.keyrotation import key_counts

    app = create_app(from_env())
    with app.app_context(), get_db(app).read_session() as s:
        for column, counts in key_counts(s).items():
            shown = ", ".join(f"{kid}: {n}" for kid, n in sorted(counts.items())) or "empty"
            click.echo(f"{column:40} {shown}")

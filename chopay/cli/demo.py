"""``chopay demo``: a seeded chopay and the bank simulator, on the embedded defaults, in one command."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

import click
import httpx

READY_WITHIN = 90.0
STOP_WITHIN = 30.0
# What a demo directory may hold; --fresh removes nothing else.
DEMO_FILES = {"demo.json", "keys", "admin-token", "serve.log", "fakebank.log"}
DATABASES = ("chopay.db", "fakebank.db")  # with their -wal, -shm and -journal files


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _wipe(data_dir: Path) -> None:
    """Remove a demo directory, refusing one that holds anything a demo does not make."""
    strangers = [
        p.name for p in data_dir.iterdir() if p.name not in DEMO_FILES and not p.name.startswith(DATABASES)
    ]
    if strangers:
        raise click.ClickException(
            f"{data_dir} holds files a demo does not make ({', '.join(sorted(strangers)[:5])}); "
            "not removing it: pass another --data-dir"
        )
    shutil.rmtree(data_dir)


def _chopay() -> str:
    return str(Path(sys.executable).with_name("chopay"))


def _start(args: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [_chopay(), *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # Ctrl-C reaches this process, which stops both in order
        )


def _wait_ready(proc: subprocess.Popen[bytes], url: str, log: Path, what: str) -> None:
    deadline = time.monotonic() + READY_WITHIN
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise click.ClickException(f"{what} exited with {proc.returncode}; see {log}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise click.ClickException(f"{what} did not answer {url} within {READY_WITHIN:.0f} s; see {log}")


def _stop(children: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM every child at once, then wait; SIGKILL the process group of one that does not stop."""
    for proc in children:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in children:
        try:
            proc.wait(timeout=STOP_WITHIN)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


@click.command()
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("var/demo"),
    show_default=True,
    help="The demo's own data directory (database, keys, simulator, logs).",
)
@click.option("--fresh", is_flag=True, help="Remove the demo directory and seed it again.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address both processes listen on.")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="chopay's port (0: free)."
)
@click.option(
    "--bank-port",
    type=click.IntRange(0, 65535),
    default=8100,
    show_default=True,
    help="The simulator's port (0: free).",
)
def demo(data_dir: Path, fresh: bool, host: str, port: int, bank_port: int) -> None:
    """Seed a demo (a market, a paid batch, a reconciliation) and serve it with the bank simulator.

    A directory that holds a finished demo is reused as it is (the tokens it printed stay
    valid); --fresh, or an unfinished directory, starts again from nothing. Ctrl-C stops both
    chopay and the simulator.
    """
    from chopay import demo as seeding

    data_dir = data_dir.resolve()
    known = seeding.Demo.load(data_dir) if data_dir.exists() else None
    if data_dir.exists() and (fresh or known is None) and any(data_dir.iterdir()):
        _wipe(data_dir)
        known = None
    data_dir.mkdir(parents=True, exist_ok=True)
    port = port or _free_port(host)
    bank_port = bank_port or _free_port(host)
    base, bank_url = f"http://{host}:{port}", f"http://{host}:{bank_port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CHOPAY_", "FAKEBANK_"))}
    bank_log, serve_log = data_dir / "fakebank.log", data_dir / "serve.log"
    bank = _start(
        [
            "fakebank",
            "serve",
            "--host",
            host,
            "--port",
            str(bank_port),
            "--db",
            str(data_dir / "fakebank.db"),
            "--source-balance",
            "0",
            "--notify-url",
            base,
            "--connector",
            seeding.connector_flag(base),
        ],
        bank_log,
        env,
    )
    children = [bank]
    stopping: list[int] = []
    serving: list[bool] = []
    interrupted = False

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stopping.append(signum)
        if not serving:  # still starting or seeding: give up at once
            raise KeyboardInterrupt

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        _wait_ready(bank, f"{bank_url}/admin/connectors", bank_log, "the bank simulator")
        if known is None:
            click.echo(f"seeding a new demo in {data_dir}")
            settings = seeding.demo_settings(data_dir, bank_url, log_level="WARNING")
            known = seeding.seed(settings, echo=lambda m: click.echo(f"  {m}"))
            how = "seeded now"
        else:
            how = "reused: pass --fresh to start again"
        serve_env = env | {
            "CHOPAY_DATA_DIR": str(data_dir),
            "CHOPAY_PAYOUT_URL": bank_url,
            "CHOPAY_BANK_CONNECTORS": f"{seeding.CONNECTOR}=chopay:{seeding.CONNECTOR_SECRET}",
            "CHOPAY_LOG_LEVEL": "WARNING",
        }
        server = _start(["serve", "--bind", f"{host}:{port}"], serve_log, serve_env)
        children.append(server)
        _wait_ready(server, f"{base}/readyz", serve_log, "chopay serve")
        serving.append(True)  # from now on a signal stops the loop below, before the banner is out
        click.echo(_banner(known, base, bank_url, data_dir, how))
        while not stopping:
            for child, what, log in (
                (bank, "the bank simulator", bank_log),
                (server, "chopay serve", serve_log),
            ):
                if child.poll() is not None:
                    raise click.ClickException(f"{what} exited with {child.returncode}; see {log}")
            time.sleep(0.2)
        click.echo("stopping chopay and the bank simulator")
    except KeyboardInterrupt:
        click.echo("interrupted: stopping (an unfinished demo directory is seeded afresh next time)")
        interrupted = True
    finally:
        serving.append(True)  # a second Ctrl-C no longer interrupts the stopping
        _stop(children)
        for s, handler in previous.items():
            signal.signal(s, handler)
    click.echo("stopped")
    if interrupted:
        sys.exit(130)


def _banner(known: object, base: str, bank_url: str, data_dir: Path, how: str) -> str:
    from chopay.demo import Demo

    assert isinstance(known, Demo)
    pad = " " * 18
    lines = [
        f"chopay demo is serving on {base} ({how})",
        f"  data:           {data_dir}",
        f"  bank simulator: {bank_url} (chopay fakebank serve, demo credentials)",
        f"  seeded:         market {known.market}: {len(known.merchants)} vendors, {known.payments} payments "
        f"({known.intents_paid} of them to payment intents)",
        f"{pad}program {known.program}: batch {known.batch} paid, {len(known.failures)} failures "
        f"({', '.join(sorted(set(known.failures.values())))})",
        f"{pad}reconciliation {known.reconciliation} of the payout account's statement",
        "  pages:",
    ]
    lines += [f"    {what:<18} {url}" for what, url in known.pages(base)]
    lines.append("  tokens (paste one at /login, or send it as Authorization: Bearer):")
    lines += [f"    {role:<9} {token}" for role, token in known.tokens.items()]
    lines += [
        "  pay a vendor live:",
        f"    chopay fakebank pay --bank-url {bank_url} --to-bin 970436 "
        "--to-account 9100000001 --amount 20000 --memo 'mua rau'",
        "  Ctrl-C stops both processes.",
    ]
    return "\n".join(lines)

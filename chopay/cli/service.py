"""``chopay serve``, ``chopay worker``, ``chopay init`` and ``chopay db``."""

from __future__ import annotations

import os
import sys
import threading

import click

from chopay.config import from_env


@click.command()
@click.option("--bind", metavar="HOST:PORT", help="Listen address (default CHOPAY_BIND or 127.0.0.1:8000).")
def serve(bind: str | None) -> None:
    """Serve the API with gunicorn; jobs run in-process unless CHOPAY_REDIS_URL is set."""
    from gunicorn.app.wsgiapp import WSGIApplication

    from chopay import shared_metrics

    if bind:
        os.environ["CHOPAY_BIND_OVERRIDE"] = bind
    shared_metrics.share_or_exit(from_env().data_dir / "metrics" / "serve")
    sys.argv = ["chopay serve", "--config", "python:chopay.gunicorn_conf", "wsgi:app"]
    WSGIApplication("%(prog)s [OPTIONS] [APP_MODULE]").run()


@click.command()
@click.option("--queue", "queues", multiple=True, help="Queue to listen on (repeatable; default: all).")
@click.option("--burst", is_flag=True, help="Run the jobs that are queued, then exit.")
def worker(queues: tuple[str, ...], burst: bool) -> None:
    """Run an rq worker on the Redis queues (needs CHOPAY_REDIS_URL).

    It also runs the sweeps, and the listeners of the queues it serves (the ledger's sequencer)
    on threads of their own.
    """
    settings = from_env()
    if not settings.redis_url:
        raise click.ClickException(
            "chopay worker needs Redis: set CHOPAY_REDIS_URL (e.g. redis://127.0.0.1:6379/0). "
            "Without Redis, `chopay serve` runs jobs on an in-process worker thread."
        )
    from rq import SimpleWorker

    from chopay import create_app, jobs

    app = create_app(settings)
    runner = jobs.runner(app)
    assert isinstance(runner, jobs.RedisRunner)
    names = list(queues) or list(jobs.QUEUES)
    stop = threading.Event()
    loop = jobs.SweepLoop(app, settings.sweep_interval)

    with app.app_context():
        # The worker first: it raises the connection pool's socket timeout above its blocking
        # dequeue (BLPOP); a connection the sweeps opened before would keep 5 s, and an idle
        # worker dequeuing on it would time out and quit.
        w = SimpleWorker([runner.queue(n) for n in names], connection=runner.connection)
        if not burst:
            # Sweeps fire at once: work a crash interrupted resumes within seconds of a restart.
            threading.Thread(target=loop.run, args=(stop,), name="chopay-sweeps", daemon=True).start()
            for listener in jobs.listeners(app):
                if listener.queue in names:
                    listen = jobs.ListenLoop(app, runner.connection, listener)
                    name = f"chopay-listen-{listener.queue}"
                    threading.Thread(target=listen.run, args=(stop,), name=name, daemon=True).start()
        try:
            w.work(burst=burst, with_scheduler=True, logging_level=settings.log_level.upper())
        finally:
            stop.set()


@click.command()
@click.option("--admin-name", default="admin", show_default=True, help="Name of the first admin user.")
def init(admin_name: str) -> None:
    """Prepare a data directory: migrate, create missing keys, create the first admin."""
    from chopay import migrate
    from chopay.cli.keys import ensure_keys
    from chopay.cli.users import write_admin_token

    settings = from_env()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    migrate.upgrade(settings.database_url)
    click.echo(f"database ready at revision {migrate.current(settings.database_url)}")
    for line in ensure_keys(settings):
        click.echo(line)
    click.echo(write_admin_token(settings, admin_name))


@click.group()
def db() -> None:
    """Manage the database schema (Alembic)."""


@db.command()
@click.option("--revision", default="head", show_default=True, help="Target revision.")
def upgrade(revision: str) -> None:
    """Apply migrations to CHOPAY_DATABASE_URL."""
    from chopay import migrate

    settings = from_env()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    migrate.upgrade(settings.database_url, revision)
    click.echo(f"database at revision {migrate.current(settings.database_url)}")


@db.command()
def current() -> None:
    """Print the revision the database is at."""
    from chopay import migrate

    click.echo(migrate.current(from_env().database_url) or "(empty: run chopay db upgrade)")

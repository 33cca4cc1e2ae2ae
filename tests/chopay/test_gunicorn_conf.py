"""The gunicorn settings: the app is built before the workers fork, and each worker starts afresh."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from flask import Flask

from chopay import gunicorn_conf
from chopay.db import Database
from chopay.jobs import InlineRunner


def test_the_app_is_built_once_before_the_workers_fork():
    assert gunicorn_conf.preload_app is True
    assert gunicorn_conf.worker_class == "gthread"


def test_a_worker_drops_the_connections_it_inherits_and_starts_its_own_job_threads(tmp_path: Path):
    app = Flask("forked")
    database = Database(f"sqlite:///{tmp_path / 'forked.sqlite'}")
    app.extensions["chopay.db"] = database
    runner = InlineRunner(app, sweep_interval=3600)
    app.extensions["chopay.jobs"] = runner
    with database.engine.connect():  # the parent opened a connection while it built the app
        pass
    inherited = database.engine.pool
    assert inherited.checkedin() == 1
    worker = SimpleNamespace(wsgi=app)
    try:
        gunicorn_conf.post_worker_init(worker)
        assert database.engine.pool is not inherited  # the worker's connections are its own
        assert database.engine.pool.checkedin() == 0
        assert runner._threads
        assert all(t.is_alive() for t in runner._threads)
        assert isinstance(worker.wsgi, gunicorn_conf.ReadDeadline)
        assert worker.chopay_app is app
    finally:
        runner.stop()
        runner.join(timeout=10)
        inherited.dispose()
        database.engine.dispose()


def test_an_app_without_a_database_is_served_as_well(tmp_path: Path):
    app = Flask("bare")  # the benchmark's no-op app runs under the same settings
    worker = SimpleNamespace(wsgi=app)
    gunicorn_conf.post_worker_init(worker)
    assert worker.chopay_app is app

"""gunicorn settings for ``chopay serve``, read from ``CHOPAY_*`` variables.

The app is loaded once, before the workers fork (``preload_app``); each worker then starts its
in-process job runner (when no Redis is configured). SIGTERM stops accepting connections and
lets requests in flight finish within ``graceful_timeout``.

Slow clients: a gthread worker gives each connection a thread while it reads the request, so
a client that sends headers or a body slowly (or not at all) holds that thread. chopay answers
with many threads (``CHOPAY_WEB_THREADS``, 64 by default: a thread waiting on a socket costs
little) and a read deadline: once a request has started, a body that does not arrive within
``CHOPAY_READ_TIMEOUT`` seconds ends the request with a 400 and frees the thread. In production
a buffering proxy in front (nginx with ``proxy_request_buffering on``, the default) hands
gunicorn only complete requests, as gunicorn's own deployment guide advises; there the
documented settings are one worker per core (``CHOPAY_WEB_WORKERS``) and 16 threads each
(``CHOPAY_WEB_THREADS=16``), which is what ``bench/intake.py`` measures.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable
from typing import Any

from chopay.config import from_env
from chopay.logs import redact_url

_settings = from_env()

bind = os.environ.get("CHOPAY_BIND_OVERRIDE") or _settings.bind
workers = _settings.web_workers
threads = _settings.web_threads
worker_class = "gthread"
# The app is built once, before the workers fork, so that every worker starts serving at the
# same moment: otherwise the first one up accepts a proxy's whole burst of keep-alive
# connections and keeps them, while the others idle. Each worker drops the database
# connections it inherits (post_worker_init); nothing else is opened or started while the
# app is built (job threads and Redis connections start on first use, in the worker).
preload_app = True
graceful_timeout = 30
timeout = 60
accesslog = None  # chopay logs each request itself, as JSON
limit_request_line = 8190  # the largest gunicorn allows; longer request lines get its HTML 414
errorlog = "-"
loglevel = _settings.log_level.lower()


class _Body:
    """gunicorn's request body, raising ValueError (a client's fault) for a malformed encoding."""

    def __init__(self, body: Any) -> None:
        self._body = body

    def _guard(self, method: Callable[..., bytes], *args: Any) -> bytes:
        from gunicorn.http.errors import ParseException

        try:
            return method(*args)
        except ParseException as exc:
            raise ValueError(f"malformed request body ({type(exc).__name__})") from None

    def read(self, size: int | None = None) -> bytes:
        return self._guard(self._body.read, size)

    def readline(self, size: int | None = None) -> bytes:
        return self._guard(self._body.readline, size)

    def __iter__(self) -> Any:
        return iter(self.readline, b"")


class ReadDeadline:
    """WSGI middleware: a request's socket reads fail after ``seconds`` without data.

    It also turns gunicorn's parse errors of a body (a malformed chunk size) into ValueError,
    which chopay answers with a 400 like any other unreadable body.
    """

    def __init__(self, app: Callable[..., Iterable[bytes]], seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        sock = environ.get("gunicorn.socket")
        if sock is not None:
            sock.settimeout(self.seconds)
        if "wsgi.input" in environ:
            environ["wsgi.input"] = _Body(environ["wsgi.input"])
        return self.app(environ, start_response)


def post_worker_init(worker: Any) -> None:
    """Start the in-process job runner of this worker's app, and put the read deadline in front."""
    from chopay.jobs import InlineRunner

    database = worker.wsgi.extensions.get("chopay.db")
    if database is not None:
        # Connections the app opened while it was built belong to the parent: leave them to it.
        database.engine.dispose(close=False)
    runner = worker.wsgi.extensions.get("chopay.jobs")
    if isinstance(runner, InlineRunner):
        runner.start()
    worker.chopay_app = worker.wsgi
    worker.wsgi = ReadDeadline(worker.wsgi, _settings.read_timeout)


def worker_exit(server: Any, worker: Any) -> None:
    """Stop the in-process job runner so the worker exits promptly."""
    from chopay.jobs import InlineRunner

    app = getattr(worker, "chopay_app", None)
    runner = app.extensions.get("chopay.jobs") if app is not None else None
    if isinstance(runner, InlineRunner):
        runner.stop()


def when_ready(server: Any) -> None:
    """Say where the service, its docs and the admin token are."""
    host, _, port = bind.rpartition(":")
    base = f"http://{host or '127.0.0.1'}:{port}"
    token_file = _settings.data_dir / "admin-token"
    lines = [
        f"chopay is serving on {base}",
        f"  API docs:      {base}/docs",
        f"  OpenAPI:       {base}/openapi.json",
        f"  readiness:     {base}/readyz",
        f"  pages:         {base}/login (sign in with a token)",
    ]
    if token_file.exists():
        lines.append(
            f'  admin token:   in {token_file.resolve()} (curl -H "Authorization: Bearer $(cat '
            f'{token_file})" {base}/v1/users/me)'
        )
    jobs = (
        "Redis (" + redact_url(str(_settings.redis_url)) + ")"
        if not _settings.inline_jobs
        else "in-process worker thread"
    )
    lines.append(f"  jobs:          {jobs}")
    print("\n".join(lines), file=sys.stderr, flush=True)

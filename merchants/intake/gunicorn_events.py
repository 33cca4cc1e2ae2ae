"""gunicorn settings for ``chopay events``: the live payment streams, on gevent workers.

A stream is idle almost all day. On a gevent worker each one is a greenlet waiting on a
queue, so one process holds thousands (``CHOPAY_EVENTS_CONNECTIONS`` per worker) for a few
kilobytes each, and the API's own gthread workers (``chopay serve``) keep every thread for
requests. The events come from Redis pub/sub (``CHOPAY_REDIS_URL``), so any number of
``chopay events`` processes, on any hosts, see every payment. Route ``/v1/merchants/*/events``
to them at the proxy, with buffering off (``proxy_buffering off``) and a long read timeout.
"""

from __future__ import annotations

import os

from chopay.config import from_env

_settings = from_env()

bind = os.environ.get("CHOPAY_EVENTS_BIND_OVERRIDE") or _settings.events_bind
workers = _settings.events_workers
worker_class = "gevent"
worker_connections = _settings.events_connections
# Each stream may hold every connection of its worker.
os.environ.setdefault("CHOPAY_EVENTS_MAX_STREAMS", str(_settings.events_connections))
graceful_timeout = 5  # streams end at once; clients reconnect with Last-Event-ID
timeout = 60
keepalive = 75
accesslog = None
errorlog = "-"
loglevel = _settings.log_level.lower()

"""The application factory: wires infrastructure modules and blueprints, nothing else."""

from __future__ import annotations

import importlib
from typing import Any

from flask import Flask

from chopay import api, db, errors, health, jobs, logs, metrics
from chopay.config import Settings, from_env

# Blueprints of every feature, registered in this order.
BLUEPRINTS = (
    "chopay.users_api",
    "payments.ledger.api",
)

# Recovery tasks enqueued on every sweep: (job, queue).
SWEEPS = (("payments.ledger.jobs.sequence", "ledger"),)


def create_app(config: Settings | dict[str, Any] | None = None) -> Flask:
    """Create the chopay WSGI application from ``config`` or the environment."""
    if config is None:
        settings = from_env()
    elif isinstance(config, Settings):
        settings = config
    else:
        settings = from_env(**config)

    app = Flask("chopay")
    app.config["CHOPAY"] = settings
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.config.update(settings.extra)

    logs.configure(settings.log_level)
    errors.init_app(app)
    logs.init_app(app)
    metrics.init_app(app)
    db.init_app(app, db.Database(settings.database_url))
    jobs.init_app(app, settings.redis_url if not settings.inline_jobs else None, settings.sweep_interval)
    health.init_app(app)
    smorest = api.init_app(app)
    for name in BLUEPRINTS:
        smorest.register_blueprint(importlib.import_module(name).blp)
    for job, queue in SWEEPS:
        jobs.register_sweep(job, queue)
    return app

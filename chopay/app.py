"""The application factory: wires infrastructure modules and blueprints, nothing else."""

from __future__ import annotations

from typing import Any

from flask import Flask

from chopay import api, auth, db, errors, health, jobs, keyrotation, logs, metrics, ratelimit, users_api, web
from chopay.config import Settings, from_env
from chopay.web import views as web_views
from disbursement import api as disbursement_api
from disbursement import domain as disbursement_domain
from disbursement import jobs as disbursement_jobs
from disbursement import receipts_web
from disbursement import web as disbursement_web
from merchants import api as merchants_api
from merchants import domain as merchants_domain
from merchants import jobs as merchant_jobs
from merchants import web as merchants_web
from merchants.intake import api as intake_api
from merchants.intake import connectors as intake_connectors
from merchants.intake import events as intake_events
from payments.ledger import api as ledger_api
from payments.ledger import domain as ledger_domain
from payments.ledger import jobs as ledger_jobs
from payments.ledger import web as ledger_web
from payments.reconciliation import api as reconciliation_api
from payments.reconciliation import jobs as reconciliation_jobs
from payments.reconciliation import web as reconciliation_web


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
    ratelimit.init_app(app, settings)
    auth.init_app(app)  # before api: authenticate before anything reads the request
    smorest = api.init_app(app)
    api.register_pattern(app, smorest, "account", ledger_domain.ACCOUNT_CODE.pattern)
    api.register_pattern(app, smorest, "program", disbursement_domain.PROGRAM_CODE.pattern)
    api.register_pattern(app, smorest, "receipt", disbursement_domain.RECEIPT_PATH.pattern)
    api.register_pattern(app, smorest, "merchant", merchants_domain.PUBLIC_ID_RE.pattern)
    api.register_pattern(app, smorest, "intent", merchants_domain.INTENT_ID_RE.pattern)

    smorest.register_blueprint(users_api.blp)
    smorest.register_blueprint(ledger_api.blp)
    smorest.register_blueprint(reconciliation_api.blp)
    for blueprint in disbursement_api.BLUEPRINTS:
        smorest.register_blueprint(blueprint)
    for blueprint in merchants_api.BLUEPRINTS:
        smorest.register_blueprint(blueprint)
    intake_connectors.init_app(app, settings.bank_connectors)
    intake_events.init_app(app, settings.redis_url, settings.events_max_streams or settings.web_threads // 2)
    for blueprint in intake_api.BLUEPRINTS:
        smorest.register_blueprint(blueprint)

    jobs.register_listener(app, ledger_jobs.listener(settings))
    for sweep in [*ledger_jobs.sweeps(settings), *reconciliation_jobs.sweeps()]:
        jobs.register_sweep(app, sweep)
    for sweep in disbursement_jobs.SWEEPS:
        jobs.register_sweep(app, sweep)
    jobs.register_sweep(app, keyrotation.SWEEP)
    for sweep in merchant_jobs.SWEEPS:
        jobs.register_sweep(app, sweep)

    web.init_app(app)
    web.register_pages(app, web_views.bp)
    web.register_pages(app, ledger_web.bp, ledger_web.NAV)
    web.register_pages(app, reconciliation_web.bp)
    web.register_pages(app, disbursement_web.bp, disbursement_web.NAV)
    web.register_pages(app, merchants_web.bp, merchants_web.NAV)
    web.register_pages(app, receipts_web.bp)
    return app

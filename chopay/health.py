"""Liveness and readiness probes."""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, jsonify

from chopay import db, jobs
from chopay.errors import problem, problem_response


def init_app(app: Flask) -> None:
    """Serve ``/healthz`` and ``/readyz``."""

    @app.get("/healthz")
    def healthz() -> Response:
        """Answer 200 while the process can serve requests."""
        return jsonify(status="ok")

    @app.get("/readyz")
    def readyz() -> Response:
        """Answer 200 when the database (and Redis, when configured) answer; 503 otherwise."""
        checks: dict[str, Any] = {}
        try:
            db.get_db().ping()
            checks["database"] = "ok"
        except Exception as exc:  # any failure means not ready; the reason goes to the caller
            checks["database"] = f"error: {type(exc).__name__}"
        if app.config["CHOPAY"].redis_url:
            try:
                jobs.runner().ping()
                checks["redis"] = "ok"
            except Exception as exc:
                checks["redis"] = f"error: {type(exc).__name__}"
        failed = sorted(name for name, state in checks.items() if state != "ok")
        if failed:
            return problem_response(
                problem(
                    503,
                    "not_ready",
                    "Service unavailable",
                    f"Not ready: {', '.join(failed)} did not answer.",
                    checks=checks,
                )
            )
        return jsonify(status="ready", checks=checks)

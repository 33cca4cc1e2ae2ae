"""chopay: cashless QR payments, benefit disbursement and a signed ledger.

This package is the composition root: configuration, database, auth, errors, jobs, the
``chopay`` command, health and metrics. It holds no domain rules.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Flask

    from chopay.config import Settings

__all__ = ["create_app"]


def create_app(config: Settings | dict[str, Any] | None = None) -> Flask:
    """Create the chopay WSGI application (see :func:`chopay.app.create_app`)."""
    from chopay.app import create_app as factory

    return factory(config)

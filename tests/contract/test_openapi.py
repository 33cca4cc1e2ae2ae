"""Every operation of the OpenAPI document, fuzzed by schemathesis over the WSGI app with every check.

Each operation is one test: schemathesis generates valid and invalid requests from the document
and checks each answer against it (status, media type, body schema, headers), that no answer is
a 5xx, that invalid data is refused and valid data accepted (a 422 only for a domain rule, see
hooks.py), and more. A new endpoint is covered as soon as it is in the document.

The fuzzer holds an admin token it cannot revoke (nobody revokes their own token), and runs
on SQLite and on PostgreSQL inside the test's rolled-back transaction.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig

from chopay import create_app
from chopay.config import from_env

from . import hooks  # noqa: F401  (registers the domain-rule check)

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = 20


def _document_app() -> Flask:
    """Build an app only to read its OpenAPI document; the requests go to each test's own app."""
    data_dir = Path(tempfile.mkdtemp(prefix="chopay-openapi-"))
    return create_app(from_env({}, data_dir=data_dir, log_level="WARNING"))


schema = schemathesis.openapi.from_wsgi(
    "/openapi.json", _document_app(), config=SchemathesisConfig.from_path(str(REPO / "schemathesis.toml"))
)


@pytest.fixture
def fuzzer_headers(make_token: Callable[..., str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {make_token('admin', name='Test Fuzzer')}"}


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_keeps_its_contract(case, app, fuzzer_headers):
    case.call_and_validate(app=app, headers=fuzzer_headers)

"""Schemathesis hooks for chopay: what a schema-valid request may be refused with.

Loaded by ``schemathesis.toml`` for ``st run`` and by the contract tests.
"""

from __future__ import annotations

import json
from typing import Any

import schemathesis
from schemathesis.specs.openapi.checks import is_unexpected_http_status_case

# Codes for input the schema describes wrongly: never acceptable for schema-valid data.
SCHEMA_LEVEL_CODES = frozenset(
    {
        "validation_failed",
        "malformed_json",
        "json_too_deep",
        "invalid_text",
        "unknown_parameter",
        "invalid_character",
    }
)


@schemathesis.check
def valid_data_meets_only_domain_rules(ctx: Any, response: Any, case: Any) -> bool | None:
    """Schema-valid data may be refused by a domain rule (a 422 with its code), never by the schema."""
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or is_unexpected_http_status_case(case):
        return None
    if response.status_code not in (400, 415, 422):
        return None
    try:
        code = json.loads(response.content).get("code")
    except (ValueError, AttributeError):
        code = None
    if response.status_code != 422 or code in SCHEMA_LEVEL_CODES:
        raise AssertionError(
            f"Schema-valid data was refused with {response.status_code} {code}: "
            "the OpenAPI document must state the rule, or the service must accept the data"
        )
    return None

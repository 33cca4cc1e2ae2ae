"""PostgreSQL connections plan each execution: a plan made while a table was small does not outlive it."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from chopay.db import make_engine

pytestmark = pytest.mark.postgresql_only


def _with_options(url: str, options: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}options={options}"


def test_connections_ask_for_custom_plans_and_keep_the_urls_own_options(database_url):
    engine = make_engine(_with_options(database_url, "-c%20statement_timeout%3D12345"))
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("SHOW plan_cache_mode")).scalar_one() == "force_custom_plan"
            assert conn.execute(sa.text("SHOW statement_timeout")).scalar_one() == "12345ms"
    finally:
        engine.dispose()

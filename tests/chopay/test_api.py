"""The OpenAPI document and the offline docs."""

from __future__ import annotations

import re

from flask.testing import FlaskClient
from openapi_spec_validator import validate


def test_openapi_json_is_a_valid_openapi_3_document(client: FlaskClient):
    resp = client.get("/openapi.json")
    assert resp.status_code == 200
    spec = resp.get_json()
    validate(spec)
    assert spec["openapi"].startswith("3.")
    assert {"/v1/users", "/v1/users/me", "/v1/users/{user_id}/revoke"} <= set(spec["paths"])
    post = spec["paths"]["/v1/users"]["post"]
    assert post["summary"] == "Create a user and show its API token once."
    assert any(p["name"] == "Idempotency-Key" and p["in"] == "header" for p in post["parameters"])
    assert "422" in post["responses"]


def test_docs_assets_are_all_served_locally(client: FlaskClient):
    resp = client.get("/docs")
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert not re.search(r"(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", html)
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert any(a.endswith(".js") for a in assets)
    assert any(a.endswith(".css") for a in assets)
    for asset in assets:
        assert asset.startswith("/")
        with client.get(asset) as served:
            assert served.status_code == 200, asset
            assert len(served.get_data()) > 1000, asset
    assert '"/openapi.json"' in html


def test_a_missing_docs_asset_is_a_problem_404(client: FlaskClient):
    resp = client.get("/docs/assets/no-such-file.js")
    assert resp.status_code == 404
    assert resp.mimetype == "application/problem+json"
    assert client.get("/docs/assets/../../etc/passwd").status_code == 404

"""``/metrics``: Prometheus text with request counts, latency histograms and job counts."""

from __future__ import annotations

from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from chopay import jobs
from tests.chopay import sample_jobs


def _samples(client: FlaskClient) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    resp = client.get("/metrics")
    assert resp.status_code == 200
    assert resp.mimetype == "text/plain"
    out = {}
    for family in text_string_to_metric_families(resp.get_data(as_text=True)):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def _value(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def test_requests_are_counted_per_endpoint_method_and_status(client: FlaskClient, admin_headers):
    for _ in range(3):
        assert client.get("/v1/users/me", headers=admin_headers).status_code == 200
    client.get("/v1/users/me")
    client.get("/v1/users/42")  # no such route
    samples = _samples(client)
    total = "chopay_http_requests_total"
    assert _value(samples, total, endpoint="users.me", method="GET", status="200") == 3
    assert _value(samples, total, endpoint="users.me", method="GET", status="401") == 1
    assert _value(samples, total, endpoint="unmatched", method="GET", status="404") == 1


def test_latency_histogram_is_labelled_by_endpoint_not_path(client: FlaskClient, admin_headers):
    ids = []
    for name in ("Test A", "Test B"):
        created = client.post("/v1/users", json={"name": name, "role": "officer"}, headers=admin_headers)
        ids.append(created.get_json()["user"]["id"])
    for user_id in ids:
        client.post(f"/v1/users/{user_id}/revoke", headers=admin_headers)
    samples = _samples(client)
    hist = "chopay_http_request_duration_seconds"
    assert _value(samples, f"{hist}_count", endpoint="users.revoke", method="POST") == 2
    assert _value(samples, f"{hist}_bucket", endpoint="users.revoke", method="POST", le="+Inf") == 2
    assert _value(samples, f"{hist}_count", endpoint="users.Users", method="POST") == 2
    assert _value(samples, f"{hist}_sum", endpoint="users.Users", method="POST") > 0
    # Paths, and so ids, stay out of the labels: the label space does not grow with the data.
    endpoints = {value for _, labels in samples for key, value in labels if key == "endpoint"}
    assert not any("/" in e for e in endpoints)
    assert "users.revoke" in endpoints


def test_job_counts_per_queue_and_state(app: Flask, client: FlaskClient, tmp_path: Path):
    out = tmp_path / "calls.jsonl"
    with app.app_context():
        jobs.enqueue(sample_jobs.RECORD, str(out), "metrics", queue="ledger")
        jobs.enqueue(sample_jobs.FLAKY, str(tmp_path / "flaky.jsonl"), 5, retry=())
    runner = jobs.runner(app)
    assert isinstance(runner, jobs.InlineRunner)
    assert runner.run_pending() == 2
    assert len(sample_jobs.calls(out)) == 1
    samples = _samples(client)
    assert _value(samples, "chopay_jobs", queue="ledger", state="queued") == 1
    assert _value(samples, "chopay_jobs", queue="ledger", state="finished") == 1
    assert _value(samples, "chopay_jobs", queue="default", state="failed") == 1
    assert ("chopay_jobs", frozenset({("queue", "default"), ("state", "finished")})) not in samples


def test_metrics_of_two_apps_are_separate(app: Flask, make_app):
    other = make_app()
    app.test_client().get("/healthz")
    samples = _samples(other.test_client())
    healthz = frozenset({("endpoint", "healthz"), ("method", "GET"), ("status", "200")})
    assert ("chopay_http_requests_total", healthz) not in samples

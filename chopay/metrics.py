"""Prometheus metrics at ``/metrics``.

Request counts and latency histograms are labelled by endpoint (the Flask endpoint name, not
the raw path, so ids do not explode the label space), method and status. Job counts per queue
and state are read from the job runner at scrape time.

Under ``chopay serve`` the request metrics are the sum over every gunicorn worker, whichever
worker answers the scrape (:mod:`chopay.shared_metrics`); the job counts are the answering
process's own when jobs run in process, and the Redis queues' when they run on Redis.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from flask import Flask, Response, g, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from chopay import jobs, shared_metrics


class _JobCollector(Collector):
    def __init__(self, app: Flask) -> None:
        self.app = app

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "chopay_jobs",
            "Jobs per queue and state (in-process: counted since start).",
            labels=["queue", "state"],
        )
        try:
            counts = jobs.runner(self.app).counts()
        except Exception:  # a scrape must not fail because Redis is down; /readyz reports that
            counts = {}
        for (queue, state), value in sorted(counts.items()):
            family.add_metric([queue, state], value)
        yield family


def init_app(app: Flask) -> None:
    """Count and time every request and serve ``/metrics``."""
    registry = CollectorRegistry()
    requests = Counter(
        "chopay_http_requests", "HTTP requests handled.", ["endpoint", "method", "status"], registry=registry
    )
    latency = Histogram(
        "chopay_http_request_duration_seconds",
        "HTTP request latency.",
        ["endpoint", "method"],
        registry=registry,
        buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    )
    job_counts = _JobCollector(app)
    registry.register(job_counts)
    app.extensions["chopay.metrics"] = registry
    shared = shared_metrics.directory()

    @app.before_request
    def _start_timer() -> None:
        g.metrics_started = time.perf_counter()

    @app.after_request
    def _observe(response: Response) -> Response:
        started = g.get("metrics_started")
        endpoint = request.url_rule.endpoint if request.url_rule is not None else "unmatched"
        requests.labels(endpoint, request.method, str(response.status_code)).inc()
        if started is not None:
            latency.labels(endpoint, request.method).observe(time.perf_counter() - started)
        return response

    @app.get("/metrics")
    def metrics() -> Response:
        """Expose Prometheus metrics."""
        scraped = registry
        if shared is not None:  # every worker's counts, added up
            scraped = CollectorRegistry()
            MultiProcessCollector(scraped, path=str(shared))  # type: ignore[no-untyped-call]
            scraped.register(job_counts)
        return Response(generate_latest(scraped), mimetype=CONTENT_TYPE_LATEST)

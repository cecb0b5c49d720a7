"""Prometheus metrics of the API process and the /metrics view.

Per process by default: each gunicorn worker has its own counters, and a scrape sees the worker
that answered it. Set PROMETHEUS_MULTIPROC_DIR (an empty directory, shared by the workers, wiped
at start) to aggregate all workers: prometheus_client then keeps the values in files there and
/metrics reads them all (settings.K8SDM_PROMETHEUS_MULTIPROC_DIR mirrors the variable).
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest

HTTP_REQUESTS = Counter(
    "k8sdm_http_requests_total", "HTTP requests answered by the API", ["method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "k8sdm_http_request_duration_seconds", "Time to answer an HTTP request", ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)

KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def observe(*, method: str, route: str, status: int, seconds: float) -> None:
    method = method if method in KNOWN_METHODS else "OTHER"
    HTTP_REQUESTS.labels(method, route, str(status)).inc()
    HTTP_LATENCY.labels(method, route).observe(seconds)


def route_of(request) -> str:
    """The URL pattern that matched (bounded cardinality), never the raw path."""
    match = getattr(request, "resolver_match", None)
    if match is None:
        return "<unmatched>"
    return "/" + (match.route or "").lstrip("^")


@require_GET
def metrics_view(request):
    if settings.K8SDM_PROMETHEUS_MULTIPROC_DIR:
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=settings.K8SDM_PROMETHEUS_MULTIPROC_DIR)
    else:
        registry = REGISTRY
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)

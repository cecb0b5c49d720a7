"""Prometheus metrics of requests: accepted by the api (on its /metrics), applied by the worker (on
K8SDM_WORKER_METRICS_PORT)."""

from prometheus_client import Counter, Gauge, Histogram

REQUESTS_ACCEPTED = Counter(
    "k8sdm_api_requests_accepted_total", "Deployment requests accepted (202) by the API", ["action"]
)
REQUESTS_REPLAYED = Counter(
    "k8sdm_api_requests_replayed_total", "Idempotent replays answered with the original request", ["action"]
)
APPLIED = Counter("k8sdm_requests_applied_total", "Deployment requests applied", ["action", "outcome"])
APPLY_SECONDS = Histogram(
    "k8sdm_request_apply_seconds", "Time to apply one request (including retries)", ["action"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
RETRIES = Counter("k8sdm_request_retries_total", "Retries while applying requests", ["kind"])
MESSAGES = Counter("k8sdm_worker_messages_total", "JetStream messages handled", ["consumer", "outcome"])
OUTBOX_BACKLOG = Gauge("k8sdm_outbox_backlog", "Requests committed but not yet acknowledged by JetStream")
OUTBOX_PUBLISHED = Counter("k8sdm_outbox_published_total", "Requests published by the outbox relay")
SYNCS = Counter("k8sdm_deployment_syncs_total", "Deployment rows synced from the cluster", ["changed"])
STALE_REPUBLISHED = Counter(
    "k8sdm_stale_requests_republished_total", "Pending requests re-published because their message was gone"
)

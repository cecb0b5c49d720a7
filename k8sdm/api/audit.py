"""Audit of refused calls: a metric, a log line with the source address and the claimed
identity, and (when the claimed identity is a known user) a Refusal row the admin shows.

Never the secret itself: tokens are named by their public prefix, JWTs by their unverified
subject. Authentication failures are bounded per address (K8SDM_AUTH_FAILURE_LIMIT), so an
attacker cannot turn the audit into unbounded writes from one address.
"""

from __future__ import annotations

import logging

from prometheus_client import Counter

from users_app.models import RefusalKind
from users_app.selectors import user_get_by_external_id
from users_app.services import refusal_record

logger = logging.getLogger("k8sdm.audit")

REFUSALS = Counter(
    "k8sdm_api_refusals_total", "Calls refused by authentication, policy, quota or rate limit", ["kind", "code"]
)


def refused(
    *, kind: str, code: str, source_address: str, claimed_identity: str = "", reason: str = "", user=None,
    correlation_id: str = "", store: bool = True,
) -> None:
    REFUSALS.labels(kind, code).inc()
    logger.warning(
        "refused (%s %s) claimed identity %r from %s: %s", kind, code, claimed_identity, source_address, reason,
        extra={"refusal_kind": kind, "refusal_code": code, "claimed_identity": claimed_identity,
               "source_address": source_address, "correlation_id": correlation_id},
    )
    if not store:
        return
    if user is None and claimed_identity and kind == RefusalKind.AUTHENTICATION:
        user = user_get_by_external_id(external_id=claimed_identity)
    if user is None and kind == RefusalKind.AUTHENTICATION:
        return  # nobody's page to show it on; the log and the metric have it
    refusal_record(
        kind=kind, code=code, user=user, claimed_identity=claimed_identity, source_address=source_address,
        detail=reason,
    )

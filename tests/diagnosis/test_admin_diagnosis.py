"""The admin's deployment page shows the diagnosis and the last log lines, and fails soft."""

from __future__ import annotations

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_page_shows_pods_events_summary_and_logs(run, admin_client):
    deployment = run("web", image="nginx:fail", replicas=2,
                     until=lambda d: sum(any(c["reason"] == "ImagePullBackOff" for c in p["containers"])
                                         for p in d["pods"]) == 2)
    page = admin_client.get(reverse("admin:deployments_app_deployment_change", args=[deployment.pk])).content.decode()
    assert "2 of 2 pods cannot pull image nginx:fail: ImagePullBackOff" in page
    assert 'class="ops-table ops-pods"' in page and "app: waiting ImagePullBackOff" in page
    assert 'class="ops-table ops-events"' in page and "Error: ImagePullBackOff" in page
    assert "is waiting to start" in page  # the logs block says why there are no lines


def test_the_page_shows_the_last_log_lines(run, admin_client):
    deployment = run("ok", replicas=1, until=lambda d: sum(p["ready"] for p in d["pods"]) == 1)
    page = admin_client.get(reverse("admin:deployments_app_deployment_change", args=[deployment.pk])).content.decode()
    assert "1 of 1 pods ready" in page
    assert "starting container app (image nginx:1.27)" in page


def test_an_unreachable_cluster_fails_soft(run, admin_client, cluster):
    deployment = run("web", replicas=1)
    cluster.fail_next(count=50, status=503)
    response = admin_client.get(reverse("admin:deployments_app_deployment_change", args=[deployment.pk]))
    assert response.status_code == 200
    assert "Cannot read the cluster" in response.content.decode()

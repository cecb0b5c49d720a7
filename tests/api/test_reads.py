"""The reads: requests and deployments, filters, pagination, and ownership (404, never 403)."""

from __future__ import annotations

import pytest

from deployments_app.models import DeploymentHealth, DeploymentStatus
from requests_app.models import RequestAction, RequestStatus
from tests import factories
from tests.api.conftest import CREATE_URL, change_url, config

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice_user():
    return factories.UserFactory(user_external_id="alice@example.com")


def test_one_request_by_request_id(alice, created):
    response = alice.get("/api/v1/requests/create-web")
    assert response.status_code == 200
    assert response.json() == created


def test_another_users_request_is_404_like_a_missing_one(alice, bob, created):
    theirs = bob.get("/api/v1/requests/create-web")
    missing = bob.get("/api/v1/requests/never-was")
    assert theirs.status_code == missing.status_code == 404
    assert theirs.json()["error"]["code"] == missing.json()["error"]["code"] == "request_not_found"
    # bob becomes a known user: still 404
    bob.post(CREATE_URL, config("bobs"), format="json")
    assert bob.get("/api/v1/requests/create-web").status_code == 404


def test_another_users_deployment_is_404_like_a_missing_one(alice, bob, created):
    bob.post(CREATE_URL, config("bobs"), format="json")
    theirs = bob.get("/api/v1/deployments/web")
    missing = bob.get("/api/v1/deployments/never-was")
    assert theirs.status_code == missing.status_code == 404
    assert theirs.json()["error"]["code"] == missing.json()["error"]["code"] == "deployment_not_found"


def test_lists_show_only_the_callers_rows(alice, bob, created):
    bob.post(CREATE_URL, config("bobs"), format="json")
    assert [r["identifier"] for r in alice.get("/api/v1/requests/").json()["results"]] == ["web"]
    assert [r["identifier"] for r in bob.get("/api/v1/requests/").json()["results"]] == ["bobs"]
    assert [d["identifier"] for d in alice.get("/api/v1/deployments/").json()["results"]] == ["web"]
    assert [d["identifier"] for d in bob.get("/api/v1/deployments/").json()["results"]] == ["bobs"]
    assert bob.get("/api/v1/requests/?identifier=web").json()["results"] == []


def test_requests_are_newest_first_and_filterable(alice, alice_user):
    dep = factories.DeploymentFactory(owner=alice_user, identifier="web")
    other = factories.DeploymentFactory(owner=alice_user, identifier="api")
    make = factories.DeploymentRequestFactory
    r1 = make(user=alice_user, deployment=dep, action=RequestAction.CREATE)
    r2 = make(user=alice_user, deployment=dep, action=RequestAction.UPDATE, status=RequestStatus.SUCCESS,
              finished_at="2025-01-01T00:00Z")
    r3 = make(user=alice_user, deployment=other, action=RequestAction.CREATE)
    ids = lambda url: [r["id"] for r in alice.get(url).json()["results"]]  # noqa: E731
    assert ids("/api/v1/requests/") == [r3.pk, r2.pk, r1.pk]
    assert ids("/api/v1/requests/?status=SUCCESS") == [r2.pk]
    assert ids("/api/v1/requests/?action=CREATE") == [r3.pk, r1.pk]
    assert ids("/api/v1/requests/?identifier=web") == [r2.pk, r1.pk]
    assert ids("/api/v1/requests/?identifier=web&action=CREATE&status=CREATED") == [r1.pk]


@pytest.mark.parametrize(
    "query,field",
    [("status=DONE", "status"), ("action=REBOOT", "action"), ("identifier=Bad_Name", "identifier"),
     ("status=", "status"), ("page_size=0", "page_size"), ("page_size=201", "page_size"),
     ("page_size=x", "page_size"), ("cursor=garbage", "cursor")],
)
def test_bad_request_filters_are_400(alice, created, query, field):
    response = alice.get(f"/api/v1/requests/?{query}")
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]


def test_request_pages_follow_the_cursor_without_gaps_or_repeats(alice, alice_user):
    dep = factories.DeploymentFactory(owner=alice_user)
    made = factories.DeploymentRequestFactory.create_batch(25, user=alice_user, deployment=dep)
    seen, url = [], "/api/v1/requests/?page_size=10"
    while url:
        page = alice.get(url).json()
        assert len(page["results"]) <= 10
        seen += [r["id"] for r in page["results"]]
        url = page["next"]
    assert seen == sorted((r.pk for r in made), reverse=True)


def test_the_default_page_size_comes_from_settings(alice, alice_user, settings):
    settings.K8SDM_PAGE_SIZE = 3
    dep = factories.DeploymentFactory(owner=alice_user)
    factories.DeploymentRequestFactory.create_batch(5, user=alice_user, deployment=dep)
    page = alice.get("/api/v1/requests/").json()
    assert len(page["results"]) == 3
    assert page["next"]


def test_listing_does_not_count_the_table(alice, alice_user, django_assert_max_num_queries):
    dep = factories.DeploymentFactory(owner=alice_user)
    factories.DeploymentRequestFactory.create_batch(3, user=alice_user, deployment=dep)
    with django_assert_max_num_queries(2) as ctx:  # the user, the page
        alice.get("/api/v1/requests/")
    assert not any("COUNT(" in q["sql"].upper() for q in ctx.captured_queries)


def test_deployments_are_filterable(alice, alice_user, settings):
    settings.K8SDM_ALLOWED_NAMESPACES = ["default", "apps"]
    a = factories.DeploymentFactory(owner=alice_user, status=DeploymentStatus.CREATED, health=DeploymentHealth.HEALTHY)
    b = factories.DeploymentFactory(owner=alice_user, status=DeploymentStatus.UPDATING, health=DeploymentHealth.DEGRADED,
                                    namespace="apps")
    ids = lambda url: [d["identifier"] for d in alice.get(url).json()["results"]]  # noqa: E731
    assert ids("/api/v1/deployments/") == [b.identifier, a.identifier]
    assert ids("/api/v1/deployments/?status=CREATED") == [a.identifier]
    assert ids("/api/v1/deployments/?health=DEGRADED") == [b.identifier]
    assert ids("/api/v1/deployments/?namespace=apps") == [b.identifier]
    assert alice.get("/api/v1/deployments/?health=FINE").status_code == 400


def test_deployment_pages(alice, alice_user):
    made = factories.DeploymentFactory.create_batch(7, owner=alice_user)
    first = alice.get("/api/v1/deployments/?page_size=5").json()
    second = alice.get(first["next"]).json()
    assert [d["identifier"] for d in first["results"] + second["results"]] == [d.identifier for d in reversed(made)]


def test_one_deployment_with_its_recent_requests(alice, created):
    alice.patch(change_url("web"), {"replicas": 2, "request_id": "u-1"}, format="json")
    response = alice.get("/api/v1/deployments/web")
    assert response.status_code == 200
    body = response.json()
    assert body["identifier"] == "web"
    assert body["status"] == "INITIATED"
    assert body["health"] == "UNKNOWN"
    assert body["desired_config"]["replicas"] == 2
    assert body["links"]["self"] == "/api/v1/deployments/web"
    assert [r["request_id"] for r in body["recent_requests"]] == ["u-1", "create-web"]
    assert body["recent_requests"][0]["links"]["self"] == "/api/v1/requests/u-1"


def test_a_reused_identifier_shows_only_the_new_owners_requests(alice, bob, created):
    from deployments_app.models import Deployment

    alice.delete(change_url("web"))
    Deployment.objects.update(status=DeploymentStatus.DELETED)
    bob.post(CREATE_URL, config(request_id="bobs-create"), format="json")
    body = bob.get("/api/v1/deployments/web").json()
    assert [r["request_id"] for r in body["recent_requests"]] == ["bobs-create"]
    # alice still sees her own requests, not the deployment
    assert alice.get("/api/v1/requests/create-web").status_code == 200
    assert alice.get("/api/v1/deployments/web").status_code == 404

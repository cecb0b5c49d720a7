"""Revisions, rollback and restart through the API: refusals, idempotency, other users' 404s.
(The worker side, end to end, is tests/e2e/test_revisions.py.)"""

from __future__ import annotations

import pytest

from deployments_app.models import Deployment
from requests_app.models import DeploymentRequest, RequestAction, RequestStatus, Revision
from requests_app.revisions import revision_record
from tests.api.conftest import change_url
from tests.factories import DeploymentRequestFactory, RevisionFactory

pytestmark = pytest.mark.django_db


def rollback_url(identifier: str = "web") -> str:
    return f"{change_url(identifier)}/rollback"


def restart_url(identifier: str = "web") -> str:
    return f"{change_url(identifier)}/restart"


def revisions_url(identifier: str = "web", number: int | str | None = None) -> str:
    base = f"/api/v1/deployments/{identifier}/revisions"
    return base if number is None else f"{base}/{number}"


def history(*images: str) -> list[Revision]:
    """Revisions 1..n of alice's `web`, one per image; the last is the current desired config."""
    deployment = Deployment.objects.get(identifier="web")
    revisions = []
    for number, image in enumerate(images, start=1):
        config = {**deployment.desired_config, "image": image}
        request = DeploymentRequestFactory(user=deployment.owner, deployment=deployment, config=config,
                                           action=RequestAction.UPDATE if number > 1 else RequestAction.CREATE,
                                           status=RequestStatus.SUCCESS, finished_at=deployment.created_at)
        revisions.append(RevisionFactory(request=request, number=number, config=config,
                                         kind="create" if number == 1 else "update", message=f"m{number}"))
    deployment.desired_config = revisions[-1].config
    deployment.save()
    return revisions


def error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.json()
    body = response.json()["error"]
    assert body["code"] == code, body
    return body


def test_revisions_are_listed_newest_first_with_the_diff_to_the_previous_one(alice, created):
    history("nginx:1.27", "nginx:1.28", "nginx:1.29")
    page = alice.get(revisions_url()).json()
    assert [r["number"] for r in page["results"]] == [3, 2, 1]
    assert page["results"][0]["diff"] == {"image": {"from": "nginx:1.28", "to": "nginx:1.29"}}
    assert page["results"][2]["diff"]["image"] == {"from": None, "to": "nginx:1.27"}
    assert page["results"][0]["message"] == "m3" and page["results"][0]["user"] == "alice@example.com"
    first = alice.get(revisions_url(), {"page_size": 2}).json()
    second = alice.get(first["next"]).json()
    assert [r["number"] for r in first["results"] + second["results"]] == [3, 2, 1]
    detail = alice.get(revisions_url(number=2)).json()
    assert detail["number"] == 2 and detail["diff"] == {"image": {"from": "nginx:1.27", "to": "nginx:1.28"}}


def test_a_missing_or_malformed_revision_number_is_a_clear_error(alice, created):
    history("nginx:1.27")
    error(alice.get(revisions_url(number=7)), 404, "revision_not_found")
    body = error(alice.get(revisions_url(number="x1")), 400, "invalid")
    assert "number" in body["fields"]


def test_another_users_revisions_rollback_and_restart_are_404(alice, bob, created):
    history("nginx:1.27", "nginx:1.28")
    error(bob.get(revisions_url()), 404, "deployment_not_found")
    error(bob.get(revisions_url(number=1)), 404, "deployment_not_found")
    error(bob.post(rollback_url(), {"to_revision": 1}, format="json"), 404, "deployment_not_found")
    error(bob.post(restart_url(), {}, format="json"), 404, "deployment_not_found")
    assert DeploymentRequest.objects.filter(action__in=["ROLLBACK", "RESTART"]).count() == 0


def test_a_rollback_to_a_revision_that_does_not_exist_is_refused_naming_to_revision(alice, created):
    history("nginx:1.27", "nginx:1.28")
    body = error(alice.post(rollback_url(), {"to_revision": 9}, format="json"), 400, "revision_not_found")
    assert "to_revision" in body["fields"]


def test_a_rollback_to_a_pruned_revision_is_refused(alice, created):
    revisions = history("nginx:1.25", "nginx:1.26", "nginx:1.27")
    revisions[0].delete()  # pruned
    body = error(alice.post(rollback_url(), {"to_revision": 1}, format="json"), 400, "revision_pruned")
    assert body["fields"]["to_revision"] == ["revision 1 was pruned"]


def test_a_rollback_to_the_current_config_is_refused(alice, created):
    history("nginx:1.27", "nginx:1.28")
    body = error(alice.post(rollback_url(), {"to_revision": 2}, format="json"), 400, "rollback_to_current")
    assert "to_revision" in body["fields"]
    assert DeploymentRequest.objects.filter(action="ROLLBACK").count() == 0


def test_a_rollback_rewrites_the_desired_config_and_records_rollback_of(alice, created):
    history("nginx:1.27", "nginx:1.28", "nginx:1.29")
    response = alice.post(rollback_url(), {"message": "undo"}, format="json")  # default: the one before
    assert response.status_code == 202, response.json()
    body = response.json()
    assert (body["action"], body["rollback_of"], body["message"]) == ("ROLLBACK", 2, "undo")
    assert body["config"]["image"] == "nginx:1.28"
    assert Deployment.objects.get(identifier="web").desired_config["image"] == "nginx:1.28"


def test_rollback_and_restart_replays_answer_the_original_and_a_changed_body_is_409(alice, created):
    history("nginx:1.27", "nginx:1.28")
    first = alice.post(rollback_url(), {"to_revision": 1, "request_id": "undo-1"}, format="json")
    assert first.status_code == 202, first.json()
    again = alice.post(rollback_url(), {"to_revision": 1, "request_id": "undo-1"}, format="json")
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    error(alice.post(rollback_url(), {"to_revision": 2, "request_id": "undo-1"}, format="json"), 409,
          "request_id_reused")

    restart = alice.post(restart_url(), {}, format="json", HTTP_IDEMPOTENCY_KEY="kick-1")
    assert restart.status_code == 202, restart.json()
    desired = Deployment.objects.get(identifier="web").desired_config
    replay = alice.post(restart_url(), {}, format="json", HTTP_IDEMPOTENCY_KEY="kick-1")
    assert replay.status_code == 200 and replay.json()["id"] == restart.json()["id"]
    assert Deployment.objects.get(identifier="web").desired_config == desired  # not restarted twice
    assert desired["restarted_at"] == restart.json()["config"]["restarted_at"]
    assert DeploymentRequest.objects.filter(action__in=["ROLLBACK", "RESTART"]).count() == 2


def test_a_wait_is_validated_and_starts_the_rollout_pending(alice, created):
    bad = alice.patch(change_url("web"), {"image": "nginx:1.28", "wait": {"timeout_seconds": 0}}, format="json")
    assert "wait.timeout_seconds" in error(bad, 400, "invalid")["fields"]
    bad = alice.patch(change_url("web"), {"image": "nginx:1.28",
                                          "wait": {"timeout_seconds": 5, "rollback_on_failure": "yes"}}, format="json")
    assert "wait.rollback_on_failure" in error(bad, 400, "invalid")["fields"]
    ok = alice.patch(change_url("web"), {"image": "nginx:1.28", "message": "cve fix",
                                         "wait": {"timeout_seconds": 60, "rollback_on_failure": True}}, format="json")
    assert ok.status_code == 202, ok.json()
    rollout = ok.json()["rollout"]
    assert (rollout["state"], rollout["timeout_seconds"], rollout["rollback_on_failure"]) == ("PENDING", 60, True)
    assert ok.json()["message"] == "cve fix"


def test_only_the_last_k8sdm_revision_history_revisions_are_kept(created, settings):
    settings.K8SDM_REVISION_HISTORY = 3
    deployment = Deployment.objects.get(identifier="web")
    for n in range(5):
        request = DeploymentRequestFactory(user=deployment.owner, deployment=deployment, action=RequestAction.UPDATE,
                                           config={**deployment.desired_config, "replicas": n + 1})
        revision_record(request=request, generation=n + 1)
    assert list(Revision.objects.filter(deployment=deployment).values_list("number", flat=True)) == [5, 4, 3]

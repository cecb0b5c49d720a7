"""The operations console as a person uses it: a real Chromium, a live server, the real worker
and watcher, the Kubernetes API emulator. Every page is checked for what it shows, for
horizontal overflow at 1366 px and for console errors, and saved as a screenshot."""

import pytest
import requests
from django.utils import timezone
from selenium.webdriver.support.ui import Select

from deployments_app.models import Deployment, DeploymentHealth
from requests_app.models import DeploymentRequest, RequestStatus
from tests.factories import DeploymentRequestFactory
from tests.stack import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

USER = {"X-User-Id": "carol@example.com"}
# A long value in a list must wrap, not widen the page ("fail" is the emulator's never-starts tag).
LONG_IMAGE = "registry.example.com/platform-team/a-rather-long-service-name-for-the-layout-check:fail"


def ask(live_server, method: str, path: str, body: dict | None = None) -> dict:
    response = requests.request(method, f"{live_server.url}/api/v1/deployments/requests/{path}", json=body,
                                headers=USER, timeout=10)
    assert response.status_code == 202, response.text
    return response.json()


def finished(request_id: str):
    req = DeploymentRequest.objects.filter(request_id=request_id).first()
    return req if req and req.status != RequestStatus.CREATED else None


def request_page(pk: int) -> str:
    return f"/admin/requests_app/deploymentrequest/{pk}/change/"


def deployment_page(pk: int) -> str:
    return f"/admin/deployments_app/deployment/{pk}/change/"


@pytest.fixture
def busy_cluster(live_server, stack, cluster, apps_api):
    """A worker and a watcher, and through the API: a healthy deployment that was scaled behind
    k8sdm's back (drift), one that cannot start (DEGRADED) and a CREATE the cluster refused."""
    stack.worker()
    stack.watcher().wait_for_log("this watcher is now active")
    shop = ask(live_server, "POST", "create", {"identifier": "shop", "image": "nginx:1.27", "replicas": 2})
    broken = ask(live_server, "POST", "create", {"identifier": "broken", "image": LONG_IMAGE})
    for req in (shop, broken):
        wait_until(lambda: finished(req["request_id"]), message=f"{req['identifier']} to be applied")
    # The cluster answers 500 to every attempt (K8SDM_APPLY_MAX_ATTEMPTS in tests.stack), so it fails.
    cluster.fail_next(count=4, status=500, verb="create")
    refused = ask(live_server, "POST", "create", {"identifier": "refused", "image": "nginx:1.27"})
    wait_until(lambda: finished(refused["request_id"]), message="the refused CREATE to finish")
    apps_api.patch_namespaced_deployment_scale("shop", "default", {"spec": {"replicas": 5}})
    wait_until(lambda: Deployment.objects.get(identifier="shop").drift, message="the drift to be mirrored")
    wait_until(lambda: Deployment.objects.get(identifier="broken").health == DeploymentHealth.DEGRADED,
               message="broken to be DEGRADED")
    return {"shop": shop, "broken": broken, "refused": DeploymentRequest.objects.get(request_id=refused["request_id"])}


def test_a_person_sees_what_is_wrong_follows_the_links_and_reads_the_records(console, busy_cluster):
    text = console.open("/admin/").check("dashboard")
    assert "k8sdm operations" in text and "Django administration" not in text
    assert "Needs attention" in text
    assert "1 request(s) failed in the last hour" in text
    assert "1 deployment(s) DEGRADED" in text
    assert "1 deployment(s) drifted from what was asked" in text
    assert "A watcher leads" in text and "Postgres session(s) from workers" in text
    failures = console.find("#ops-failures").text
    assert "refused" in failures and "gave up after 4 attempts" in failures
    degraded = console.find("#ops-degraded").text
    assert "default/broken" in degraded and "ProgressDeadlineExceeded" in degraded
    assert "drift: replicas 5 != 2" in console.find("#ops-drift").text

    console.click("#ops-verdict a[href*='health__exact=DEGRADED']")
    text = console.check("deployments-degraded")
    assert "broken" in text and "shop" not in text

    # The lists: filters, readable columns, no bulk delete, fit in 1366 px.
    text = console.open("/admin/requests_app/deploymentrequest/").check("requests")
    assert "Select deployment request to view" in text
    for column in ("took", "error", "status", "created at"):
        assert column in text.lower()
    assert "Delete selected" not in text
    console.follow(console.driver.find_element("link text", "Failure"))  # the status filter
    text = console.check("requests-failed")
    assert "refused" in text and "shop" not in text

    text = console.open("/admin/deployments_app/deployment/").check("deployments")
    assert "drift: replicas 5 != 2" in text
    assert "Delete selected" not in text
    rows = {row.find_element("css selector", "th").text: row.text
            for row in console.find_all("#result_list tbody tr")}
    assert "drift" not in rows["broken"]  # nothing shown when in sync

    text = console.open("/admin/users_app/user/").check("api-users")
    assert "API users (callers of the REST API)" in text and "carol@example.com" in text

    # The records: read-only, readable.
    shop = Deployment.objects.get(identifier="shop")
    text = console.open(deployment_page(shop.pk)).check("deployment")
    assert "View deployment" in text
    assert "drift: replicas 5 != 2" in text
    assert not console.find_all("input[name=_save]") and not console.find_all("a.deletelink")
    recent = console.find("#ops-recent-requests").text
    assert "SUCCESS" in recent and "CREATE" in recent and "carol@example.com" in recent
    conditions = console.find(".ops-conditions").text
    assert "Available" in conditions and "Progressing" in conditions
    assert console.find_all(".ops-json .ops-json-key")  # formatted, highlighted JSON

    refused = busy_cluster["refused"]
    text = console.open(request_page(refused.pk)).check("request")
    assert "View deployment request" in text and "FAILURE" in text and "gave up after 4 attempts" in text
    assert "Outbox lease until" in text and not console.find_all("input[name=outbox_lease_until]")
    assert text.index("Request id") < text.index("Outbox lease until")


def test_safe_actions_retry_resync_and_publish_again(console, busy_cluster, stack, apps_api):
    # Retry a FAILED CREATE: a new request, made by the staff user, that the worker applies.
    refused = busy_cluster["refused"]
    console.open(request_page(refused.pk)).click("#ops-action-retry")
    text = console.check("request-retried")
    assert "Retried request" in text
    retry = DeploymentRequest.objects.exclude(pk=refused.pk).filter(identifier="refused").get()
    assert retry.correlation_id == "staff:ops-anna" and retry.user.user_external_id == "carol@example.com"
    wait_until(lambda: finished(retry.request_id), message="the retry to be applied")
    text = console.open(request_page(retry.pk)).check("request-retry-done")
    assert "SUCCESS" in text and f"retry-of-{refused.pk}-by-ops-anna" in text

    # Re-sync: with no watcher running, a change made in the cluster shows up only when asked for.
    for proc in stack.procs:
        if proc.name == "watcher":
            proc.terminate()
    apps_api.patch_namespaced_deployment_scale("shop", "default", {"spec": {"replicas": 3}})
    shop = Deployment.objects.get(identifier="shop")
    assert shop.replicas == 5
    console.open(deployment_page(shop.pk)).click("#ops-action-resync")
    assert "Asked a worker to re-read default/shop" in console.check("deployment-resync-asked")
    wait_until(lambda: Deployment.objects.get(identifier="shop").replicas == 3, message="the re-sync")
    assert "drift: replicas 3 != 2" in console.open(deployment_page(shop.pk)).check("deployment-resynced")

    # Publish again: a request whose message was lost (published, still pending, never picked up).
    stuck = DeploymentRequestFactory(deployment=shop, user=shop.owner, action="UPDATE", published_at=timezone.now(),
                                     config={**shop.desired_config, "replicas": 2}, payload={"replicas": 2})
    console.open("/admin/requests_app/deploymentrequest/?status__exact=CREATED")
    console.find(f"input.action-select[value='{stuck.pk}']").click()
    Select(console.find("select[name=action]")).select_by_value("publish_again")
    console.click("button[name=index]")
    assert "published 1 of 1 pending request(s)" in console.check("requests-published-again").lower()
    wait_until(lambda: finished(stuck.request_id), message="the published request to be applied")


def test_the_login_page_is_branded_and_repeated_failures_lock_the_account(chromium, live_server, screenshot_dir,
                                                                          staff_user):
    from tests.browser.conftest import Page

    chromium.delete_all_cookies()
    chromium.get_log("browser")
    page = Page(chromium, live_server.url, screenshot_dir)
    for attempt in range(5):
        page.open("/admin/login/?next=/admin/")
        if attempt == 0:
            text = page.check("login")
            assert "k8sdm operations" in text and "Django administration" not in text
        page.find("#id_username").send_keys(staff_user.username)
        page.find("#id_password").send_keys("not-the-password")
        page.click("input[type=submit]")
    chromium.get_log("browser")  # the 429 itself is logged by the browser as a failed load
    text = page.text()
    page.screenshot("login-locked-out")
    assert "Too many failed logins" in text
    assert chromium.execute_script("return [innerWidth, document.scrollingElement.scrollWidth]")[1] <= 1366

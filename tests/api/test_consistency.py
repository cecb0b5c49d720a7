"""One set of rules on every path: slashes, 405s that say where to go, unknown query parameters,
messages that agree with the field rules, 415s that say what to send, "did you mean", and a
pending request that reads as pending."""

from __future__ import annotations

import pytest
import yaml
from django.utils import timezone

from requests_app.models import DeploymentRequest, RequestStatus
from tests.api.conftest import CREATE_URL, change_url, config
from tests.api.test_errors import assert_error_shape

pytestmark = pytest.mark.django_db

# --- trailing slashes -------------------------------------------------------------------------

READS = ["/api/v1/requests/", "/api/v1/deployments/", "/api/v1/deployments/web", "/api/v1/requests/create-web"]


def other_form(path: str) -> str:
    return path[:-1] if path.endswith("/") else path + "/"


@pytest.mark.parametrize("path", READS)
def test_every_read_answers_the_same_with_or_without_the_trailing_slash(alice, created, path):
    canonical = alice.get(path)
    assert canonical.status_code == 200
    other = alice.get(other_form(path))
    assert other.status_code == 200, other.content
    assert other.json() == canonical.json()


def test_every_write_answers_with_or_without_the_trailing_slash(alice):
    response = alice.post(CREATE_URL + "/", config(request_id="slash"), format="json")
    assert response.status_code == 202, response.json()
    assert alice.patch(change_url("web") + "/", {"replicas": 3}, format="json").status_code == 202
    assert alice.delete(change_url("web") + "/").status_code == 202
    assert DeploymentRequest.objects.count() == 3


@pytest.mark.parametrize("path", ["/api/schema", "/healthz/", "/readyz/", "/metrics/", "/api/docs", "/api/redoc"])
def test_the_other_paths_answer_both_forms_too(client, path):
    assert client.get(path).status_code == 200


def test_links_use_the_canonical_form_whatever_form_was_asked(alice, created):
    alice.post(CREATE_URL, config("web2"), format="json")
    page = alice.get("/api/v1/requests?page_size=1").json()
    assert "/api/v1/requests/?" in page["next"]
    assert page["results"][0]["links"]["self"].startswith("/api/v1/requests/")


def test_a_path_that_is_wrong_in_both_forms_is_still_a_json_404(alice):
    for path in ("/api/v1/deployment", "/api/v1/deployment/", "/api/v1/requests/a/b", "/api/v1/requests/a/b/"):
        assert_error_shape(alice.get(path), 404, "not_found")


# --- 405 --------------------------------------------------------------------------------------

WRONG_METHODS = [
    # (method, path, a path the message must point at)
    ("patch", "/api/v1/deployments/web", "/api/v1/deployments/requests/web"),
    ("put", "/api/v1/deployments/web", "/api/v1/deployments/requests/web"),
    ("delete", "/api/v1/deployments/web", "/api/v1/deployments/requests/web"),
    ("post", "/api/v1/deployments/web", "/api/v1/deployments/requests/create"),
    ("post", "/api/v1/deployments/", "/api/v1/deployments/requests/create"),
    ("delete", "/api/v1/deployments/", "/api/v1/deployments/requests/create"),
    ("post", "/api/v1/requests/", "/api/v1/deployments/requests/create"),
    ("delete", "/api/v1/requests/create-web", "/api/v1/deployments/requests/{identifier}"),
    ("get", CREATE_URL, "/api/v1/requests/"),
    ("get", "/api/v1/deployments/requests/web", "/api/v1/deployments/web"),
    ("post", "/api/v1/deployments/requests/web", "/api/v1/deployments/requests/create"),
    ("put", "/api/v1/deployments/requests/web", "PATCH"),
]


@pytest.mark.parametrize("method,path,points_at", WRONG_METHODS)
def test_a_405_names_the_allowed_methods_and_where_to_go(alice, created, method, path, points_at):
    response = getattr(alice, method)(path, {}, format="json")
    error = assert_error_shape(response, 405, "method_not_allowed")
    allowed = [m.strip() for m in response["Allow"].split(",")]
    assert f"allowed: {', '.join(allowed)}." in error["message"]
    assert points_at in error["message"], error["message"]
    assert DeploymentRequest.objects.count() == 1


def test_a_405_never_echoes_a_malformed_identifier(alice):
    error = assert_error_shape(alice.patch("/api/v1/deployments/EVIL%0A", {}, format="json"), 405)
    assert "/api/v1/deployments/requests/{identifier}" in error["message"]


# --- unknown query parameters -----------------------------------------------------------------

UNKNOWN_PARAMS = [
    ("get", "/api/v1/deployments/?identifier=web", "identifier", "cursor, health, namespace, page_size, status"),
    ("get", "/api/v1/requests/?health=HEALTHY", "health", "action, cursor, identifier, page_size, status"),
    ("get", "/api/v1/deployments/web?verbose=1", "verbose", "none"),
    ("get", "/api/v1/requests/create-web?fields=id", "fields", "wait"),
    ("get", "/api/v1/requests/?format=yaml", "format", "action, cursor, identifier, page_size, status"),
    ("get", "/api/v1/deployments/?format=json", "format", "cursor, health, namespace, page_size, status"),
    ("post", CREATE_URL + "?dry_run=1", "dry_run", "none"),
    ("patch", change_url("web") + "?force=true", "force", "none"),
    ("delete", change_url("web") + "?cascade=true", "cascade", "none"),
]


@pytest.mark.parametrize("method,url,name,accepted", UNKNOWN_PARAMS)
def test_an_unknown_query_parameter_is_a_400_naming_it(alice, created, method, url, name, accepted):
    kwargs = {"data": config("web2") if method == "post" else {"replicas": 2}, "format": "json"}
    response = getattr(alice, method)(url, **kwargs) if method != "get" else alice.get(url)
    error = assert_error_shape(response, 400, "unknown_query_parameter")
    assert list(error["fields"]) == [name]
    assert f"Accepted here: {accepted}." in error["message"]
    assert DeploymentRequest.objects.count() == 1


def test_a_mistyped_query_parameter_gets_a_did_you_mean(alice):
    error = assert_error_shape(alice.get("/api/v1/requests/?statsu=FAILURE"), 400, "unknown_query_parameter")
    assert error["fields"] == {"statsu": ['Unknown query parameter; did you mean "status"?']}


def test_a_query_parameter_given_twice_is_a_400(alice):
    error = assert_error_shape(alice.get("/api/v1/requests/?status=SUCCESS&status=FAILURE"), 400)
    assert error["fields"] == {"status": ["given more than once"]}


def test_the_declared_query_parameters_are_accepted(alice, created):
    assert alice.get("/api/v1/requests/?status=CREATED&action=CREATE&identifier=web&page_size=5").status_code == 200
    assert alice.get("/api/v1/deployments/?status=INITIATED&health=UNKNOWN&namespace=default").status_code == 200


# --- messages agree with the rules ------------------------------------------------------------


@pytest.mark.parametrize("value", ["0", "500", "abc", "-3"])
def test_page_size_errors_state_the_same_range_as_the_schema(alice, client, settings, value):
    schema = yaml.safe_load(client.get("/api/schema/").content)
    [param] = [p for p in schema["paths"]["/api/v1/requests/"]["get"]["parameters"] if p["name"] == "page_size"]
    low, high = param["schema"]["minimum"], param["schema"]["maximum"]
    assert (low, high) == (1, settings.K8SDM_MAX_PAGE_SIZE)
    error = assert_error_shape(alice.get(f"/api/v1/requests/?page_size={value}"), 400)
    assert f"from {low} to {high}" in error["message"]
    assert error["fields"] == {"page_size": [f"must be an integer from {low} to {high}"]}


def test_a_415_says_to_send_json(alice):
    response = alice.post(CREATE_URL, "identifier=web", content_type="application/x-www-form-urlencoded")
    error = assert_error_shape(response, 415, "unsupported_media_type")
    assert "Content-Type: application/json" in error["message"]


@pytest.mark.parametrize("body,field,suggestion", [
    ({"replica": 3}, "replica", "replicas"),
    ({"imgae": "nginx:1.28"}, "imgae", "image"),
    ({"label": {"a": "b"}}, "label", "labels"),
    ({"ports": [{"containerPort": 80}]}, "ports[0].containerPort", "container_port"),
    ({"resources": {"limits": {"cpus": "1"}}}, "resources.limits.cpus", "cpu"),
])
def test_an_unknown_field_close_to_a_real_one_gets_a_did_you_mean(alice, created, body, field, suggestion):
    error = assert_error_shape(alice.patch(change_url("web"), body, format="json"), 400, "invalid")
    assert error["fields"][field] == [f'Unknown field; did you mean "{suggestion}"?']


def test_an_unknown_field_like_nothing_real_is_just_unknown(alice):
    error = assert_error_shape(alice.post(CREATE_URL, config(hostNetwork=True), format="json"), 400)
    assert error["fields"]["hostNetwork"] == ["Unknown field."]


# --- pending ----------------------------------------------------------------------------------


def test_a_request_says_it_is_pending_until_it_is_applied(alice, created):
    assert created["status"] == "CREATED" and created["pending"] is True
    detail = alice.get("/api/v1/deployments/web").json()
    assert detail["recent_requests"][0]["pending"] is True
    DeploymentRequest.objects.update(status=RequestStatus.SUCCESS, finished_at=timezone.now())
    assert alice.get("/api/v1/requests/create-web").json()["pending"] is False
    assert alice.get("/api/v1/deployments/web").json()["recent_requests"][0]["pending"] is False
    assert alice.get("/api/v1/requests/").json()["results"][0]["pending"] is False


def test_the_schema_documents_pending_and_what_a_request_status_means(client):
    schema = yaml.safe_load(client.get("/api/schema/").content)
    request = schema["components"]["schemas"]["DeploymentRequestOutput"]["properties"]
    assert request["pending"]["type"] == "boolean"
    assert "pending" in request["status"]["description"]


# --- docs offline -----------------------------------------------------------------------------


@pytest.mark.parametrize("page", ["/api/docs/", "/api/redoc/"])
def test_the_docs_pages_load_nothing_from_another_host(client, page):
    import re

    html = client.get(page).content.decode()
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", html), html
    assert "fonts.googleapis" not in html and "fonts.gstatic" not in html
    for asset in re.findall(r"""(?:src|href)="(/static/[^"]+)\"""", html):
        response = client.get(asset)
        assert response.status_code == 200, asset
        if hasattr(response, "streaming_content"):
            b"".join(response.streaming_content)


def test_swagger_ui_does_not_call_the_online_validator(client):
    assert '"validatorUrl": null' in client.get("/api/docs/").content.decode()


def test_the_schema_documents_the_503_of_a_database_outage_on_every_operation(client):
    schema = yaml.safe_load(client.get("/api/schema/").content)
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            assert "503" in operation["responses"], (path, method)
            assert "Retry-After" in operation["responses"]["503"]["description"]

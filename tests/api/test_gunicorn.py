"""The identity header through a real gunicorn (the server `make run` and production use).

gunicorn's default (`--header-map drop`) drops any header with an underscore before Django sees it,
so `X_User_Id` can never pose as `X-User-Id`. With `--header-map dangerous` it maps both to one
environ key and joins the values: the API refuses that as ambiguous (401). Run gunicorn with the
default or `--header-map refuse` (README "API").
"""

from __future__ import annotations

from requests_app.models import DeploymentRequest
from tests.api.servers import call, gunicorn  # noqa: F401 (a fixture)

CREATE = "/api/v1/deployments/requests/create"


def test_through_gunicorn_a_request_with_the_header_is_accepted(gunicorn):
    port = gunicorn()
    status, body = call(port, "POST", CREATE, [("X-User-Id", "alice")], {"identifier": "gw", "image": "nginx"})
    assert status == 202, body
    assert DeploymentRequest.objects.get().user.user_external_id == "alice"


def test_through_gunicorn_an_underscore_header_alone_is_dropped_so_the_caller_is_unidentified(gunicorn):
    port = gunicorn()
    status, body = call(port, "POST", CREATE, [("X_User_Id", "mallory")], {"identifier": "gw", "image": "nginx"})
    assert status == 401
    assert body["error"]["code"] == "missing_identity"
    assert not DeploymentRequest.objects.exists()


def test_through_gunicorn_an_underscore_header_cannot_override_the_gateways(gunicorn):
    port = gunicorn()
    status, body = call(port, "GET", "/api/v1/requests/", [("X-User-Id", "alice"), ("X_User_Id", "mallory")])
    assert status == 200  # mallory's copy never reached Django


def test_through_gunicorn_in_dangerous_mode_both_headers_are_refused_as_ambiguous(gunicorn):
    port = gunicorn("--header-map", "dangerous")
    for headers in ([("X-User-Id", "alice"), ("X_User_Id", "mallory")], [("X_User_Id", "mallory"), ("X-User-Id", "alice")]):
        status, body = call(port, "POST", CREATE, headers, {"identifier": "gw", "image": "nginx"})
        assert status == 401
        assert body["error"]["code"] == "ambiguous_identity"
    assert not DeploymentRequest.objects.exists()


def test_through_gunicorn_a_large_body_is_413_json(gunicorn):
    port = gunicorn()
    body = {"identifier": "gw", "image": "nginx", "annotations": {"a": "x" * 70_000}}
    status, answer = call(port, "POST", CREATE, [("X-User-Id", "alice")], body)
    assert status == 413
    assert answer["error"]["code"] == "payload_too_large"

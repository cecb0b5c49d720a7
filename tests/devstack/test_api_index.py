"""The links `make run` prints: /api/v1/ lists the endpoints and the docs, / leads there."""

from __future__ import annotations

import pytest
from django.urls import resolve

pytestmark = pytest.mark.django_db


def test_the_api_index_lists_exactly_the_operations_the_openapi_schema_documents(client):
    response = client.get("/api/v1/")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    listed = {(e["method"], e["path"]) for e in response.json()["endpoints"]}
    schema = client.get("/api/schema/?format=json").json()
    documented = {(method.upper(), path) for path, operations in schema["paths"].items() for method in operations}
    assert listed == documented
    assert all(e["description"] for e in response.json()["endpoints"])


def test_every_link_of_the_api_index_answers(client):
    body = client.get("/api/v1/").json()
    assert "X-User-Id" in body["authentication"]
    for url in [*body["docs"].values(), body["health"]["alive"], body["health"]["metrics"]]:
        assert client.get(url).status_code == 200, url
    assert client.get(body["admin"]).status_code == 302  # to the login page


def test_the_paths_in_the_api_index_route_to_a_view_that_takes_the_listed_method(client):
    for endpoint in client.get("/api/v1/").json()["endpoints"]:
        path = endpoint["path"].replace("{identifier}", "nothing-here").replace("{request_id}", "nothing-here")
        resolve(path)  # raises Resolver404 for a path no route matches
        response = client.generic(endpoint["method"], path, "{}", content_type="application/json",
                                  HTTP_X_USER_ID="alice")
        assert response.status_code != 405, (endpoint, response.content)


def test_the_api_index_refuses_writes_in_the_json_error_shape(client):
    response = client.post("/api/v1/", {}, content_type="application/json")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"


def test_the_api_index_refuses_query_parameters_like_every_api_path(client):
    response = client.get("/api/v1/?verbose=1")
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"verbose": ["Unknown query parameter."]}


def test_the_root_redirects_to_the_api_index(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"] == "/api/v1/"
    assert client.get(response["Location"]).json()["version"] == "v1"

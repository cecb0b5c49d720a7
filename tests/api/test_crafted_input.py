"""Crafted input on every endpoint: a 4xx in the one error shape, nothing stored, no traceback logged.

Each case is something an attacker (or a broken client) sends on purpose: bodies that break a JSON
parser, path parameters no identifier can have, cursors the server never wrote, query parameters
that are not numbers, duplicated keys, unicode look-alikes. The database is in use in every case
(alice has written before), so a value that reached a query would show up as a 500.
"""

from __future__ import annotations

import base64
import json
import logging

import pytest

from deployments_app.models import Deployment
from requests_app.models import DeploymentRequest
from tests.api.conftest import CREATE_URL, change_url, config
from tests.api.test_errors import assert_error_shape

pytestmark = pytest.mark.django_db

JSON = "application/json"


@pytest.fixture
def quiet_log(caplog):
    """Fails the test if anything logged a traceback or an ERROR while it ran."""
    caplog.set_level(logging.WARNING)
    yield caplog
    noisy = [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert not noisy, [f"{r.name}: {r.getMessage()}" for r in noisy]


@pytest.fixture
def stored(created, quiet_log):
    """alice has one request and one deployment; returns a function asserting nothing else was stored."""

    def unchanged():
        assert DeploymentRequest.objects.count() == 1
        assert Deployment.objects.count() == 1

    return unchanged


def refused(response, status: int, code: str | None = None, field: str | None = None) -> dict:
    error = assert_error_shape(response, status, code)
    if field is not None:
        assert field in error["fields"], error
    return error


def nested(depth: int) -> str:
    return '{"identifier": "deep", "image": "nginx", "labels": ' + "[" * depth + "]" * depth + "}"


# --- bodies -----------------------------------------------------------------------------------

BAD_BODIES = [
    # (raw body, what the message must mention)
    (b"[" * 20_000 + b"]" * 20_000, "nested"),  # RecursionError inside json.loads
    (nested(33).encode(), "nested"),  # parses, but deeper than any config can be
    (b'{"identifier": "web2", "image": "nginx", "replicas": 1, "replicas": 9}', "'replicas'"),
    (b'{"identifier": "web2", "image": "nginx", "resources": {"limits": {"cpu": "1", "cpu": "9"}}}', "'cpu'"),
    (b'{"identifier": "w\xff", "image": "nginx"}', "UTF-8"),
    (b'\xef\xbb\xbf{"identifier": "web2", "image": "nginx"}', "BOM"),
    ('{"identifier": "web2", "image": "nginx"}'.encode("utf-16"), "UTF-8"),
    (b'{"identifier": "web2", "image": "nginx", "replicas": NaN}', "NaN"),
    (b'{"identifier": "web2", "image": "nginx", "replicas": Infinity}', "Infinity"),
    (b'{"identifier": "web2", "image": "nginx", "replicas": ' + b"9" * 5000 + b"}", "digits"),
    (b'{"identifier": "web2",', "Expecting"),
    (b"\x00", "Expecting"),
]


@pytest.mark.parametrize("body,mentions", BAD_BODIES, ids=[m + str(i) for i, (_, m) in enumerate(BAD_BODIES)])
def test_a_body_that_is_not_plain_json_is_400_malformed(alice, stored, body, mentions):
    for response in (
        alice.post(CREATE_URL, body, content_type=JSON),
        alice.patch(change_url("web"), body, content_type=JSON),
        alice.delete(change_url("web"), body, content_type=JSON),
    ):
        error = refused(response, 400, "malformed", "body")
        assert mentions in error["message"], error
    stored()


@pytest.mark.parametrize("body", [b"[]", b'"web"', b"3", b"null", b"true", b"false", b"0", b'""', b"[{}]"])
def test_a_body_that_is_not_an_object_is_400_on_every_write(alice, stored, body):
    for response in (
        alice.post(CREATE_URL, body, content_type=JSON),
        alice.patch(change_url("web"), body, content_type=JSON),
        alice.delete(change_url("web"), body, content_type=JSON),
    ):
        refused(response, 400, "invalid", "body")
    stored()


@pytest.mark.parametrize("charset", ["utf-16", "latin-1", "no-such-codec", "utf-7"])
def test_a_charset_other_than_utf8_is_415(alice, stored, charset):
    response = alice.post(CREATE_URL, b'{"identifier": "web2", "image": "nginx"}',
                          content_type=f"application/json; charset={charset}")
    error = refused(response, 415, "unsupported_media_type")
    assert "application/json" in error["message"] and "UTF-8" in error["message"]
    stored()


def test_utf8_named_as_such_is_accepted(alice, quiet_log):
    response = alice.post(CREATE_URL, b'{"identifier": "web2", "image": "nginx"}',
                          content_type="application/json; charset=UTF-8")
    assert response.status_code == 202, response.json()


def test_a_body_without_a_content_type_is_415_not_an_empty_body(alice, stored):
    response = alice.generic("POST", CREATE_URL, b'{"identifier": "web2", "image": "nginx"}', content_type="")
    error = refused(response, 415, "unsupported_media_type")
    assert "Content-Type: application/json" in error["message"]
    stored()


def test_a_chunked_body_is_411(alice, stored):
    response = alice.post(CREATE_URL, b"", content_type=JSON, HTTP_TRANSFER_ENCODING="chunked")
    refused(response, 411, "length_required")
    stored()


HUGE = 10**30

BAD_VALUES = [
    ({"replicas": HUGE}, "replicas"),
    ({"replicas": -HUGE}, "replicas"),
    ({"replicas": 1e308}, "replicas"),
    ({"replicas": 2.0}, "replicas"),
    ({"ports": [{"container_port": HUGE}]}, "ports[0].container_port"),
    ({"ports": [{"container_port": 80.0}]}, "ports[0].container_port"),
    ({"identifier": "wéb"}, "identifier"),
    ({"identifier": "ｗｅｂ"}, "identifier"),  # fullwidth look-alike
    ({"identifier": "we\u200bb"}, "identifier"),  # zero-width space
    ({"identifier": "web\u0000"}, "identifier"),
    ({"identifier": "٣web"}, "identifier"),  # a non-ASCII digit
    ({"image": "nginx\u0000"}, "image"),
    ({"namespace": "default\u0000"}, "namespace"),
    ({"labels": {"tier\u0000": "web"}}, "labels.tier\u0000"),
    ({"labels": {"tier": "wéb"}}, "labels.tier"),
    ({"env": [{"name": "A", "value": "\u0000"}]}, "env[0].value"),
    ({"env": [{"name": "A", "value": "\ud800"}]}, "env[0].value"),  # a lone surrogate PostgreSQL cannot store
    ({"annotations": {"note": "\udfff"}}, "annotations.note"),
    ({"command": ["sh", "\u0000"]}, "command[1]"),
    ({"request_id": "réq-1"}, "request_id"),
    ({"request_id": "req\u0000"}, "request_id"),
    ({"image": "nginx:wéb"}, "image"),
    ({"resources": {"limits": {"cpu": "١"}}}, "resources.limits.cpu"),
    ({"labels": {"tier": "web\n"}}, "labels.tier"),
]


def raw(body: dict) -> bytes:
    """JSON with \\u escapes, so strings the test client cannot encode (lone surrogates) reach the server."""
    return json.dumps(body, ensure_ascii=True).encode()


@pytest.mark.parametrize("overrides,path", BAD_VALUES, ids=[p for _, p in BAD_VALUES])
def test_crafted_values_are_400_naming_the_field(alice, stored, overrides, path):
    body = {**config("web2"), **overrides}
    refused(alice.post(CREATE_URL, raw(body), content_type=JSON), 400, "invalid", path)
    stored()


PATCHABLE = [(o, p) for o, p in BAD_VALUES if not {"identifier", "namespace"} & set(o)]


@pytest.mark.parametrize("overrides,path", PATCHABLE, ids=[p for _, p in PATCHABLE])
def test_crafted_values_in_a_patch_are_400_naming_the_field(alice, stored, overrides, path):
    refused(alice.patch(change_url("web"), raw(overrides), content_type=JSON), 400, None, path)
    stored()


# --- path parameters --------------------------------------------------------------------------

BAD_IDENTIFIERS = ["a%00", "a%00b", "web%0A", "w%C3%A9b", "%EF%BD%97eb", "WEB", "-web", "a" * 64, "web%20",
                   "%E2%80%AEbew", "web%09", "%00"]


@pytest.mark.parametrize("identifier", BAD_IDENTIFIERS)
def test_an_identifier_in_the_path_is_checked_before_any_query(alice, stored, identifier):
    refused(alice.get(f"/api/v1/deployments/{identifier}"), 400, "invalid", "identifier")
    refused(alice.patch(change_url(identifier), {"replicas": 2}, format="json"), 400, "invalid", "identifier")
    refused(alice.delete(change_url(identifier)), 400, "invalid", "identifier")
    stored()


@pytest.mark.parametrize("request_id", ["a%00b", "%00", "req%0A", "r%C3%A9q", "a%20b", "x" * 129, "%E2%80%AE"])
def test_a_request_id_in_the_path_is_checked_before_any_query(alice, stored, request_id):
    refused(alice.get(f"/api/v1/requests/{request_id}"), 400, "invalid", "request_id")
    stored()


def test_a_well_formed_identifier_of_nobody_is_still_404(alice, stored):
    refused(alice.get("/api/v1/deployments/nobody"), 404)
    refused(alice.get("/api/v1/requests/nobody"), 404)


# --- query parameters and cursors -------------------------------------------------------------


def cursor(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


FORGED_CURSORS = [
    cursor("p=not-a-date"),
    cursor("p=2020-13-45"),
    cursor("p=2020-01-01 00:00:00"),  # naive: not a position this server writes
    cursor("p=2020-01-01 00:00:00+00:00\x00"),
    cursor("p=" + "9" * 5000),
    cursor("o=-1"),
    cursor("o=1&r=x"),
    cursor("o=" + "9" * 5000),
    "not base64!",
    "%00",
    "%C3%A9",
    "cD0yMDIw%0A",
]


@pytest.mark.parametrize("forged", FORGED_CURSORS)
@pytest.mark.parametrize("path", ["/api/v1/requests/", "/api/v1/deployments/"])
def test_a_forged_cursor_is_400_naming_it(alice, stored, path, forged):
    refused(alice.get(f"{path}?cursor={forged}"), 400, "invalid", "cursor")


@pytest.mark.parametrize("path", ["/api/v1/requests/", "/api/v1/deployments/"])
def test_the_cursors_the_server_writes_still_work(alice, path, quiet_log):
    for n in range(3):
        assert alice.post(CREATE_URL, config(f"app{n}"), format="json").status_code == 202
    seen = []
    url = f"{path}?page_size=1"
    while url:
        page = alice.get(url).json()
        seen += page["results"]
        url = page["next"]
    assert len(seen) == 3
    previous = alice.get(alice.get(f"{path}?page_size=1").json()["next"]).json()["previous"]
    assert alice.get(previous).status_code == 200


BAD_QUERY = [
    ("page_size", "0"), ("page_size", "-1"), ("page_size", "201"), ("page_size", str(HUGE)), ("page_size", "abc"),
    ("page_size", "١٢"), ("page_size", " 12"), ("page_size", "12.0"), ("page_size", "%00"),
    ("status", "%00"), ("status", "created"), ("status", "CREATED%00"),
]


@pytest.mark.parametrize("name,value", BAD_QUERY)
@pytest.mark.parametrize("path", ["/api/v1/requests/", "/api/v1/deployments/"])
def test_a_bad_query_value_is_400_naming_the_parameter(alice, stored, path, name, value):
    refused(alice.get(f"{path}?{name}={value}"), 400, None, name)


@pytest.mark.parametrize("query,name", [
    ("identifier=a%00", "identifier"), ("identifier=W%C3%A9b", "identifier"), ("action=%00", "action"),
])
def test_a_bad_request_filter_is_400(alice, stored, query, name):
    refused(alice.get(f"/api/v1/requests/?{query}"), 400, "invalid", name)


@pytest.mark.parametrize("query,name", [("namespace=a%00", "namespace"), ("health=%00", "health")])
def test_a_bad_deployment_filter_is_400(alice, stored, query, name):
    refused(alice.get(f"/api/v1/deployments/?{query}"), 400, "invalid", name)


@pytest.mark.parametrize("path", ["/api/v1/requests/", "/api/v1/deployments/web", CREATE_URL])
def test_thousands_of_query_parameters_are_a_400_not_a_500(alice, stored, path):
    query = "&".join(f"p{i}=1" for i in range(1200))
    response = alice.get(f"{path}?{query}") if path != CREATE_URL else alice.post(
        f"{path}?{query}", config("web2"), format="json")
    refused(response, 400, "too_many_parameters")
    stored()


# --- headers ----------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["req\x00", "ré", "x" * 129, "a b", ""])
def test_a_crafted_idempotency_key_is_400(alice, stored, key):
    response = alice.post(CREATE_URL, config("web2"), format="json", HTTP_IDEMPOTENCY_KEY=key)
    refused(response, 400, None, "Idempotency-Key")
    stored()


def test_a_crafted_correlation_id_is_replaced_not_echoed(alice, stored):
    response = alice.get("/api/v1/requests/", HTTP_X_CORRELATION_ID="a\x00\nb")
    assert response.status_code == 200
    assert "\n" not in response["X-Correlation-Id"] and "\x00" not in response["X-Correlation-Id"]

"""GET /api/v1/requests/{request_id}?wait=N: answers when the request finishes, or when the wait runs out."""

from __future__ import annotations

import threading

import requests

from tests.api.conftest import CREATE_URL, config
from tests.stack import wait_until


def _long_poll(api: str, user: str, request_id: str, wait: int, out: dict) -> None:
    response = requests.get(f"{api}/api/v1/requests/{request_id}", params={"wait": wait},
                            headers={"X-User-Id": user}, timeout=wait + 30)
    out["status"], out["body"] = response.status_code, response.json()


def test_a_long_poll_answers_when_the_request_finishes(stack):
    _, api = stack.api()
    user = {"X-User-Id": "alice@example.com"}
    accepted = requests.post(api + CREATE_URL, json=config("web", request_id="lp-1"), headers=user)
    assert accepted.status_code == 202 and accepted.json()["status"] == "CREATED"
    out: dict = {}
    poller = threading.Thread(target=_long_poll, args=(api, "alice@example.com", "lp-1", 60, out))
    poller.start()
    assert poller.is_alive()  # no worker yet: it is waiting
    stack.worker()
    poller.join(90)
    assert not poller.is_alive()
    assert out["status"] == 200
    assert out["body"]["request_id"] == "lp-1" and out["body"]["status"] == "SUCCESS"
    assert out["body"]["finished_at"] is not None


def test_a_long_poll_answers_with_the_pending_request_when_the_wait_runs_out(stack):
    _, api = stack.api()
    headers = {"X-User-Id": "alice@example.com"}
    assert requests.post(api + CREATE_URL, json=config("web", request_id="lp-2"), headers=headers).status_code == 202
    response = requests.get(f"{api}/api/v1/requests/lp-2", params={"wait": 1}, headers=headers, timeout=30)
    assert response.status_code == 200 and response.json()["status"] == "CREATED"


def test_a_finished_request_answers_at_once_and_the_wait_is_validated(stack):
    _, api = stack.api()
    headers = {"X-User-Id": "alice@example.com"}
    assert requests.post(api + CREATE_URL, json=config("web", request_id="lp-3"), headers=headers).status_code == 202
    stack.worker()
    body = {}
    wait_until(lambda: body.update(requests.get(f"{api}/api/v1/requests/lp-3", headers=headers).json())
               or body.get("status") == "SUCCESS", message="the request to finish")
    assert requests.get(f"{api}/api/v1/requests/lp-3", params={"wait": 60}, headers=headers).json()["status"] == "SUCCESS"
    for bad in ("-1", "61", "abc", "1.5"):
        response = requests.get(f"{api}/api/v1/requests/lp-3", params={"wait": bad}, headers=headers)
        assert response.status_code == 400, bad
        assert "wait" in response.json()["error"]["fields"]


def test_a_long_poll_on_another_users_request_is_404_without_waiting(stack):
    _, api = stack.api()
    assert requests.post(api + CREATE_URL, json=config("web", request_id="lp-4"),
                         headers={"X-User-Id": "alice@example.com"}).status_code == 202
    response = requests.get(f"{api}/api/v1/requests/lp-4", params={"wait": 60},
                            headers={"X-User-Id": "bob@example.com"}, timeout=30)
    assert response.status_code == 404

"""Text logs: one record is one line, whatever a client put into the message."""

from __future__ import annotations

import logging
import sys

import pytest

from k8sdm.logging import TextFormatter
from tests.api.servers import call, gunicorn  # noqa: F401 (a fixture)

FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
FAKE = "2026-12-03 08:00:00,000 ERROR   k8sdm: injected"


def record(message: str, *args, exc_info=None) -> logging.LogRecord:
    return logging.LogRecord("django.request", logging.WARNING, __file__, 1, message, args, exc_info)


def test_control_characters_from_a_client_are_escaped_onto_one_line():
    line = TextFormatter(FORMAT).format(record("Not Found: %s", f"/api/v1/x\n{FAKE}\r\x1b[2J\x00\u2028"))
    assert "\n" not in line and "\r" not in line and "\x1b" not in line and "\x00" not in line
    assert line.endswith(r"/api/v1/x\x0a" + FAKE + r"\x0d\x1b[2J\x00\u2028")


def test_a_traceback_is_indented_under_its_record_so_no_line_of_it_looks_like_a_record():
    try:
        raise ValueError(f"bad value\n{FAKE}")
    except ValueError:
        text = TextFormatter(FORMAT).format(record("failed", exc_info=sys.exc_info()))
    first, *rest = text.splitlines()
    assert first.endswith("failed")
    assert rest and all(line.startswith("    ") for line in rest)
    assert any("Traceback" in line for line in rest)


@pytest.mark.urls("tests.api.crash_urls")
def test_a_crash_on_a_path_with_a_newline_is_logged_as_one_record(client, caplog):
    response = client.get("/api/v1/crash/any/x%0A" + FAKE.replace(" ", "%20"))
    assert response.status_code == 500
    [crash] = [r for r in caplog.records if r.exc_info]
    assert FAKE in crash.getMessage()
    lines = TextFormatter(FORMAT).format(crash).splitlines()
    assert FAKE in lines[0]
    assert all(line.startswith("    ") for line in lines[1:])


def test_the_settings_use_the_escaping_formatter_for_text_logs(settings):
    assert settings.LOGGING["formatters"]["text"]["()"] == "k8sdm.logging.TextFormatter"


def test_through_gunicorn_a_newline_in_a_path_writes_no_fake_log_line(gunicorn, tmp_path):
    port = gunicorn()
    injected = FAKE.replace(" ", "%20")
    for path in (f"/api/v1/nothing%0A{injected}", f"/api/v1/deployments/web%0A{injected}",
                 f"/api/v1/deployments/requests/web%0D%0A{injected}"):
        status, body = call(port, "GET", path, [("X-User-Id", "alice")])
        assert status in (400, 404, 405), body
    log = (tmp_path / f"gunicorn-{port}.log").read_text()
    assert "injected" in log  # the paths were logged ...
    assert not any(line.startswith(FAKE[:23]) for line in log.splitlines())  # ... never as a line of their own

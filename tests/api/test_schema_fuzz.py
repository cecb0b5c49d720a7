"""Fuzz the published OpenAPI schema with schemathesis against the API served over real HTTP.

pytest-django's live_server is a real threaded HTTP server on the test database; schemathesis (the
CLI, as CI would run it) reads /api/schema/, generates valid and invalid requests for every
operation (with a valid X-User-Id) and checks that none gets a 5xx and every response matches the
schema (status codes, content types, bodies, headers). Bounded: a few examples per operation.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

# ignored_auth does not apply: any well-formed id IS a valid identity (the gateway vouches for it).
CHECKS = ",".join([
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
    "unsupported_method",
    "allow_header_conformance",
])

# 413 is a correct refusal of invalid data too (a list over its maxItems can be over the body limit).
CONFIG = """
[checks.negative_data_rejection]
expected-statuses = [400, 401, 404, 405, 409, 413, 415, 422, 429]
"""


@pytest.mark.timeout(180)
def test_the_schema_fuzzes_clean_against_the_live_api(live_server, settings, tmp_path, cluster):
    # cluster: the emulator, so GET .../diagnosis and .../logs have an API server to read (else a 503)
    settings.K8SDM_RATE_LIMIT = ""  # schemathesis sends far more than a user would
    settings.K8SDM_RATE_LIMIT_PER_ADDRESS = ""
    # A long-poll on a pending request waits as long as it is asked to: bound that below the
    # request timeout, or a generated ?wait=45 reads as a network error (larger waits get a 400).
    settings.K8SDM_LONG_POLL_MAX_SECONDS = 3
    st = Path(sys.executable).parent / "schemathesis"
    (tmp_path / "schemathesis.toml").write_text(CONFIG)
    result = subprocess.run(
        [
            str(st), "--config-file", str(tmp_path / "schemathesis.toml"), "run", f"{live_server.url}/api/schema/",
            "--checks", CHECKS,
            "--header", "X-User-Id: fuzzer@example.com",
            "--max-examples", "25",
            "--seed", "4",
            "--workers", "1",
            "--phases", "examples,coverage,fuzzing,stateful",
            "--max-time", "50",
            "--request-timeout", "10",
            "--no-color",
        ],
        capture_output=True, text=True, timeout=170, cwd=tmp_path,
    )
    output = result.stdout + result.stderr
    print(output[-20000:])
    assert result.returncode == 0, output[-6000:]

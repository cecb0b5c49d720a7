"""Production settings: the documented env passes `check --deploy`, secrets load from files, and
gunicorn serves the admin's static files through whitenoise after collectstatic."""

import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from tests.deploy import helpers


def production_env(**extra) -> dict:
    """The production variables docs/configuration.md documents ("Minimal production set")."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "K8SDM_", "PROMETHEUS_"))}
    env.update(
        K8SDM_ENV="production",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(64),
        DJANGO_ALLOWED_HOSTS="k8sdm.example.com,k8sdm-api.k8sdm.svc",
        DATABASE_URL=os.environ.get("DATABASE_URL", "postgres://k8sdm@db.example.internal:5432/k8sdm"),
        NATS_URL=os.environ.get("NATS_URL", "nats://nats.example.internal:4222"),
        K8SDM_ALLOWED_NAMESPACES="default",
        K8SDM_TRUSTED_PROXIES="10.0.0.0/8",
        CACHE_URL="redis://redis.example.internal:6379/0",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def manage(*args, env: dict, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "manage.py", *args], cwd=helpers.ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_the_documented_production_variables_are_the_ones_this_test_uses():
    text = (helpers.DOCS / "configuration.md").read_text().split("## Minimal production set", 1)[1]
    text = text.split("\n## ", 1)[0]
    for name in ("K8SDM_ENV", "DJANGO_SECRET_KEY", "DJANGO_ALLOWED_HOSTS", "DATABASE_URL", "NATS_URL",
                 "K8SDM_ALLOWED_NAMESPACES", "K8SDM_TRUSTED_PROXIES", "CACHE_URL"):
        assert f"`{name}`" in text


def test_check_deploy_reports_no_issues_with_the_documented_production_env():
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=production_env())
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "System check identified no issues" in output, output
    assert "WARNINGS" not in output


def test_production_refuses_to_start_without_a_secret_key():
    env = production_env()
    del env["DJANGO_SECRET_KEY"]
    result = manage("check", env=env)
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr


def test_the_secret_key_can_come_from_a_file(tmp_path):
    key = secrets.token_urlsafe(64)
    key_file = tmp_path / "django-secret-key"
    key_file.write_text(key)
    env = production_env(DJANGO_SECRET_KEY_FILE=str(key_file))
    del env["DJANGO_SECRET_KEY"]
    result = manage("shell", "-c", "from django.conf import settings; print(len(settings.SECRET_KEY))", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == str(len(key))


def test_the_database_url_can_come_from_a_file(tmp_path):
    url_file = tmp_path / "database-url"
    url_file.write_text("postgres://k8sdm:s3cret@db.example.internal:6543/k8sdm_prod")
    env = production_env(DATABASE_URL_FILE=str(url_file))
    del env["DATABASE_URL"]
    result = manage("shell", "-c", "from django.conf import settings; d = settings.DATABASES['default']; "
                    "print(d['HOST'], d['PORT'], d['NAME'])", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "db.example.internal 6543 k8sdm_prod"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(url: str, host: str, **headers) -> tuple[int, dict, bytes]:
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    request = urllib.request.Request(url, headers={"Host": host, **headers})
    try:
        with urllib.request.build_opener(NoRedirect).open(request, timeout=5) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


@pytest.fixture(scope="module")
def production_api(tmp_path_factory):
    """gunicorn with the image's config and production settings, after collectstatic into a temp root."""
    tmp = tmp_path_factory.mktemp("prod")
    # localhost: what the image's HEALTHCHECK sends (docs/deploying.md).
    env = production_env(DJANGO_STATIC_ROOT=str(tmp / "static"), PROMETHEUS_MULTIPROC_DIR=str(tmp / "prom"),
                         DJANGO_ALLOWED_HOSTS="k8sdm.example.com,k8sdm-api.k8sdm.svc,localhost")
    # Importing the app defines gauges, which in multiprocess mode write there at once.
    (tmp / "prom").mkdir(exist_ok=True)
    collect = manage("collectstatic", "--noinput", "--verbosity", "0", env=env, timeout=120)
    assert collect.returncode == 0, collect.stderr
    port = free_port()
    log = open(tmp / "gunicorn.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--config", str(helpers.DOCKER / "gunicorn.conf.py"),
         "--bind", f"127.0.0.1:{port}", "--workers", "2", "--worker-tmp-dir", str(tmp), "k8sdm.wsgi"],
        cwd=helpers.ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if get(f"{base}/healthz", "k8sdm.example.com")[0] == 200:
                break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            log.close()
            pytest.fail(f"gunicorn did not start:\n{(tmp / 'gunicorn.log').read_text()[-3000:]}")
        time.sleep(0.2)
    yield base, tmp
    proc.terminate()
    proc.wait(15)
    log.close()


def test_gunicorn_serves_the_admin_css_through_whitenoise(production_api):
    base, tmp = production_api
    status, headers, body = get(f"{base}/static/admin/css/base.css", "k8sdm.example.com",
                                **{"X-Forwarded-Proto": "https"})
    assert status == 200
    assert headers["Content-Type"].startswith("text/css")
    assert b"body" in body
    # The manifest storage wrote a hashed copy, cacheable forever.
    hashed = [p.name for p in (tmp / "static" / "admin" / "css").glob("base.*.css")]
    assert hashed
    status, headers, _ = get(f"{base}/static/admin/css/{hashed[0]}", "k8sdm.example.com",
                             **{"X-Forwarded-Proto": "https"})
    assert status == 200 and "immutable" in headers.get("Cache-Control", "")


def test_plain_http_is_redirected_to_https_except_health_and_metrics(production_api):
    base, _ = production_api
    status, headers, _ = get(f"{base}/admin/login/", "k8sdm.example.com")
    assert status == 301 and headers["Location"].startswith("https://k8sdm.example.com/")
    for path in ("/healthz", "/metrics"):
        assert get(f"{base}{path}", "k8sdm.example.com")[0] == 200, path


def test_https_responses_carry_hsts_and_unknown_hosts_are_refused(production_api):
    base, _ = production_api
    status, headers, _ = get(f"{base}/healthz", "k8sdm.example.com", **{"X-Forwarded-Proto": "https"})
    assert status == 200
    assert "max-age=31536000" in headers["Strict-Transport-Security"]
    assert get(f"{base}/healthz", "evil.example.org")[0] == 400


def test_metrics_sum_all_gunicorn_workers_with_a_multiprocess_dir(production_api):
    base, tmp = production_api
    for _ in range(6):
        get(f"{base}/healthz", "k8sdm.example.com")
    status, _, body = get(f"{base}/metrics", "k8sdm.example.com")
    assert status == 200 and b"k8sdm_http_requests_total" in body
    assert list((tmp / "prom").glob("*.db")), "PROMETHEUS_MULTIPROC_DIR holds the workers' values"


def test_the_images_healthcheck_passes_against_the_running_api(production_api):
    base, _ = production_api
    port = base.rsplit(":", 1)[1]
    line = next(line for line in (helpers.DOCKER / "Dockerfile").read_text().splitlines()
                if line.strip().startswith("CMD [\"python\", \"-c\""))
    command = json.loads(line.strip()[len("CMD "):])
    code = command[2].replace("127.0.0.1:8000", f"127.0.0.1:{port}")
    assert code != command[2]
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr


def test_the_wait_for_migrations_check_passes_on_a_migrated_database(db):
    from django.db import connection

    s = connection.settings_dict
    url = f"postgres://{s['USER']}@{s['HOST']}:{s['PORT']}/{s['NAME']}"
    result = manage("migrate", "--check", env=production_env(DATABASE_URL=url))
    assert result.returncode == 0, result.stdout + result.stderr


def test_check_deploy_refuses_header_mode_in_production_without_a_trusted_gateway():
    env = production_env()
    del env["K8SDM_TRUSTED_PROXIES"]
    result = manage("check", "--deploy", env=env)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "k8sdm.E001" in output and "K8SDM_TRUSTED_PROXIES" in output
    # A gateway secret alone is enough; so is jwt/token authentication without header mode.
    for extra in ({"K8SDM_GATEWAY_SECRET": secrets.token_urlsafe(32)},
                  {"K8SDM_AUTH_MODES": "jwt,token", "K8SDM_JWT_JWKS_URL": "https://idp.example.com/jwks",
                   "K8SDM_JWT_ISSUER": "https://idp.example.com", "K8SDM_JWT_AUDIENCE": "k8sdm"}):
        result = manage("check", "--deploy", "--fail-level", "WARNING", env={**env, **extra})
        assert result.returncode == 0, result.stdout + result.stderr


def test_check_deploy_refuses_other_unsafe_authentication_settings():
    cases = [
        ({"K8SDM_TRUSTED_PROXIES": "0.0.0.0/0"}, "k8sdm.E003"),
        ({"K8SDM_TRUSTED_PROXIES": "not-a-cidr"}, "k8sdm.E002"),
        ({"K8SDM_AUTH_MODES": "header,jwt"}, "k8sdm.E004"),
        ({"K8SDM_POLICY_MAX_CPU_TOTAL": "lots"}, "k8sdm.E005"),
    ]
    for extra, code in cases:
        result = manage("check", "--deploy", env=production_env(**extra))
        assert result.returncode != 0 and code in result.stdout + result.stderr, (extra, result.stderr)
    result = manage("check", env=production_env(K8SDM_JWT_ALGORITHMS="RS256,HS256"))
    assert result.returncode != 0 and "K8SDM_JWT_ALGORITHMS" in result.stderr

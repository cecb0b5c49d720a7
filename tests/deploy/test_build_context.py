"""What the image gets: the build context as .dockerignore filters it must be a complete product.

No Docker engine runs here, so this rebuilds the context by hand (the same patterns, last match
wins, `!` re-includes) and runs the image's build-time and start-up commands from it.
"""

import fnmatch
import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy import helpers


def ignore_patterns() -> list[tuple[bool, str]]:
    out = []
    for line in (helpers.ROOT / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            negate = line.startswith("!")
            out.append((negate, line.lstrip("!").strip("/")))
    return out


def is_ignored(relative: str, patterns) -> bool:
    """A file is out if the last pattern matching it (or one of its parent directories) excludes it."""
    parts = relative.split("/")
    paths = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for negate, pattern in patterns:
        if pattern.startswith("**/"):
            hit = any(fnmatch.fnmatchcase(path.rsplit("/", 1)[-1], pattern[3:]) for path in paths)
        else:
            hit = any(fnmatch.fnmatchcase(path, pattern) for path in paths)
        if hit:
            ignored = not negate
    return ignored


def build_context(target: Path) -> list[str]:
    patterns = ignore_patterns()
    copied = []
    tracked = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=helpers.ROOT,
                             capture_output=True, text=True, check=True).stdout.split()
    for relative in tracked:
        if is_ignored(relative, patterns) or not (helpers.ROOT / relative).is_file():
            continue
        destination = target / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(helpers.ROOT / relative, destination)
        copied.append(relative)
    return copied


@pytest.fixture(scope="module")
def context(tmp_path_factory):
    target = tmp_path_factory.mktemp("context")
    return target, build_context(target)


def test_the_context_has_the_product_and_none_of_the_dev_tree(context):
    _, files = context
    assert "manage.py" in files and "requirements.txt" in files and "docker/gunicorn.conf.py" in files
    assert any(f.startswith("k8sdm/") for f in files)
    for prefix in ("tests/", "kube_emulator/", "devstack/", "docs/", ".venv/", ".data/", "docker/k8s/"):
        assert not any(f.startswith(prefix) for f in files), prefix
    assert "docker/.env.example" not in files


def test_the_image_build_steps_and_the_three_processes_work_from_the_context(context, tmp_path):
    root, _ = context
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "K8SDM_", "PYTHONPATH"))}
    # What the Dockerfile sets, plus the build-only key of its collectstatic RUN.
    env.update(K8SDM_ENV="production", DJANGO_STATIC_ROOT=str(tmp_path / "static"), PYTHONDONTWRITEBYTECODE="1",
               DJANGO_SECRET_KEY="build-only-collectstatic-key-not-a-secret-0123456789abcdef")
    # Only the context on the path: the dev venv's k8sdm-dev.pth would add the whole repository.
    isolate = (f"import sys; sys.path[:] = [p for p in sys.path if not p.startswith({str(helpers.ROOT)!r}) "
               f"or '/.venv/' in p]; sys.path.insert(0, {str(root)!r}); ")
    python = [sys.executable, "-c", isolate + "sys.argv = ['manage.py'] + sys.argv[1:]; import runpy; "
              "runpy.run_path('manage.py', run_name='__main__')"]
    collect = subprocess.run([*python, "collectstatic", "--noinput", "--verbosity", "0"], cwd=root, env=env,
                             capture_output=True, text=True, timeout=120)
    assert collect.returncode == 0, collect.stderr
    assert (tmp_path / "static" / "admin" / "css" / "base.css").exists()
    env["DJANGO_SECRET_KEY"] = secrets.token_urlsafe(64)
    env["DJANGO_ALLOWED_HOSTS"] = "k8sdm.example.com"
    env["K8SDM_TRUSTED_PROXIES"] = "10.0.0.0/8"
    env["CACHE_URL"] = "redis://redis.example.internal:6379/0"
    for command in (["check", "--deploy", "--fail-level", "WARNING"], ["runworker", "--help"],
                    ["runwatcher", "--help"], ["migrate", "--help"]):
        result = subprocess.run([*python, *command], cwd=root, env=env, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, f"{command}: {result.stderr}"
    product = ("import os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'k8sdm.settings'); import django; "
               "django.setup(); import k8sdm.wsgi, k8sdm.urls, requests_app.worker, deployments_app.watcher; ")
    probe = subprocess.run([sys.executable, "-c", isolate + product + "import devstack"], cwd=root, env=env,
                           capture_output=True, text=True, timeout=60)
    # The product imports from the context alone; devstack (not in the image) is really absent.
    assert "No module named 'devstack'" in probe.stderr, probe.stderr

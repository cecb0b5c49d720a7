"""The architecture in `.importlinter` holds, and an import against it breaks the build."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("k8sdm", "users_app", "deployments_app", "requests_app", "devstack")
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint_imports(cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(cwd), "COLUMNS": "400"}  # one line per contract
    return subprocess.run([str(LINT_IMPORTS), "--no-cache", "--no-logo"], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def test_the_code_keeps_every_import_contract():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "bad_import", "contract"),
    [
        # a lower layer importing a higher one
        ("deployments_app/sync.py", "from requests_app.models import DeploymentRequest", "Layers"),
        # shared infrastructure importing an app
        ("k8sdm/backoff.py", "import deployments_app.models", "Layers"),
        # the NATS client outside the messaging package
        ("requests_app/worker.py", "import nats", "nats is imported by the messaging package only"),
        # the Kubernetes client outside its adapter
        ("deployments_app/operations.py", "import kubernetes", "kubernetes is imported by the Kubernetes adapter"),
        # psycopg behind Django's back
        ("deployments_app/leader.py", "import psycopg", "psycopg is used through Django"),
    ],
)
def test_an_import_against_the_architecture_breaks_the_contract(tmp_path, module, bad_import, contract):
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / ".importlinter", tmp_path / ".importlinter")
    assert lint_imports(tmp_path).returncode == 0  # the copy itself is clean
    target = tmp_path / module
    target.write_text(target.read_text() + f"\n{bad_import}  # noqa\n")
    result = lint_imports(tmp_path)
    assert result.returncode != 0, result.stdout
    broken = [line for line in result.stdout.splitlines() if " BROKEN" in line and "Contracts:" not in line]
    assert len(broken) == 1 and contract in broken[0], result.stdout

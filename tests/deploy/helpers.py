"""What the deploy tests read: the env vars the settings read, the manifests, the compose file."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
K8S = DOCKER / "k8s"
DOCS = ROOT / "docs"
SETTINGS = ROOT / "k8sdm" / "settings.py"

# env("NAME", ...), env.str("NAME", ...), env.db_url("NAME", ...) ...
ENV_CALL = re.compile(r"\benv(?:\.\w+)?\(\s*[\"']([A-Za-z_][A-Za-z0-9_]*)[\"']")

# Not settings, but variables the manifests set on purpose (documented in docs/deploying.md):
# POD_IP feeds $(POD_IP) into the api's DJANGO_ALLOWED_HOSTS.
K8S_HELPER_VARS = {"POD_IP"}


@lru_cache
def settings_env_vars_by_regex() -> frozenset[str]:
    return frozenset(ENV_CALL.findall(SETTINGS.read_text()))


_RECORDER = """
import json, os, runpy, sys
import environ
seen = []
original = environ.Env.get_value
def get_value(self, var, *args, **kwargs):
    seen.append(var)
    return original(self, var, *args, **kwargs)
environ.Env.get_value = get_value
runpy.run_path(sys.argv[1])
print(json.dumps(sorted(set(seen))))
"""


@lru_cache
def settings_env_vars_read() -> frozenset[str]:
    """The names settings.py really asks django-environ for, by running it with a recording Env.
    Local/test and production take different branches; the union of both is what it reads."""
    names: set[str] = set()
    for mode_env in (
        {"K8SDM_ENV": "test"},
        {"K8SDM_ENV": "production", "DJANGO_SECRET_KEY": "x" * 60},
    ):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "K8SDM_"))}
        env.update(mode_env)
        out = subprocess.run(
            [sys.executable, "-c", _RECORDER, str(SETTINGS)], cwd=ROOT, env=env,
            capture_output=True, text=True, timeout=60, check=True,
        ).stdout
        names.update(json.loads(out.strip().splitlines()[-1]))
    return frozenset(names)


def is_setting_var(name: str) -> bool:
    """A variable the settings read, directly or as a FileAwareEnv secret file (NAME_FILE)."""
    known = settings_env_vars_regex_and_read()
    return name in known or (name.endswith("_FILE") and name[: -len("_FILE")] in known)


@lru_cache
def settings_env_vars_regex_and_read() -> frozenset[str]:
    return settings_env_vars_by_regex() | settings_env_vars_read()


def manifest_files() -> list[Path]:
    return sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")


def load_docs(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


@lru_cache
def _all_docs() -> tuple[tuple[str, dict], ...]:
    return tuple((path.name, doc) for path in manifest_files() for doc in load_docs(path))


def all_docs(include_examples: bool = False) -> list[dict]:
    return [doc for name, doc in _all_docs() if include_examples or ".example." not in name]


def docs_of_kind(kind: str, include_examples: bool = False) -> list[dict]:
    return [doc for doc in all_docs(include_examples) if doc["kind"] == kind]


def workloads() -> dict[str, dict]:
    """component -> pod spec, for the Deployments and the Job."""
    out = {}
    for doc in all_docs():
        if doc["kind"] in ("Deployment", "Job"):
            out[doc["metadata"]["labels"]["app.kubernetes.io/component"]] = doc
    return out


def compose() -> dict:
    return yaml.safe_load((DOCKER / "compose.yaml").read_text())

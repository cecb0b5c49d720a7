"""Write a kubeconfig that both kubectl and the Python client accept."""
from __future__ import annotations

import os

import yaml

DUMMY_TOKEN = "kube-emulator-dummy-token"


def kubeconfig_dict(url: str, context: str = "kube-emulator") -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [{"name": context, "cluster": {"server": url}}],
        "users": [{"name": context, "user": {"token": DUMMY_TOKEN}}],
        "contexts": [{"name": context, "context": {"cluster": context, "user": context,
                                                   "namespace": "default"}}],
        "current-context": context,
    }


def write_kubeconfig(path: str, url: str, context: str = "kube-emulator") -> str:
    path = os.fspath(path)
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        yaml.safe_dump(kubeconfig_dict(url, context), f, default_flow_style=False)
    os.replace(tmp, path)
    return path

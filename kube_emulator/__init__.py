"""kube_emulator: an in-memory Kubernetes API server emulator for apps/v1 Deployments
and core/v1 Namespaces, for tests and local development. NOT a cluster: see README.md.

Standalone: ``python -m kube_emulator --port 8001 --kubeconfig /tmp/kubeconfig``.
In-process: ``EmulatorServer().start()``; pytest: ``kube_emulator.pytest_plugin``.
"""
from .app import Emulator
from .kubelet import crash_exit_code, image_fails
from .kubeconfig import kubeconfig_dict, write_kubeconfig
from .server import EmulatorServer, free_port

__all__ = ["Emulator", "EmulatorServer", "crash_exit_code", "free_port", "image_fails", "kubeconfig_dict",
           "write_kubeconfig"]

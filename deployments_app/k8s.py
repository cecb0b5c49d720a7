"""The Kubernetes adapter: the ONLY module that imports `kubernetes` (held to it by `.importlinter`).

I/O only: get, create, replace, delete, list and watch apps/v1 Deployments. What the objects contain
is built and read by `DeploymentConfig` (deployments_app/config.py). It speaks plain dicts (the JSON
the API server sends) rather than the client's generated models: cheaper, and what callers compare
and store anyway. Every failure leaves as a `K8sError` that says whether it is worth retrying
(connection errors, timeouts, 429, 5xx) and carries the server's `reason`, message and any
`Retry-After`.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass

import urllib3
from django.conf import settings
from kubernetes import client, config
from kubernetes.client.rest import ApiException
from prometheus_client import Counter, Histogram

logger = logging.getLogger(__name__)

K8S_CALL_SECONDS = Histogram(
    "k8sdm_k8s_call_seconds", "Latency of Kubernetes API calls", ["verb"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
K8S_CALL_ERRORS = Counter("k8sdm_k8s_call_errors_total", "Failed Kubernetes API calls", ["verb", "code"])


@dataclass
class K8sError(Exception):
    """A failed call. `status` 0 means no HTTP answer (connection refused, timeout)."""

    status: int
    reason: str
    message: str
    retry_after: float | None = None

    def __str__(self) -> str:
        code = f"{self.status} {self.reason}" if self.status else self.reason
        return f"Kubernetes API: {code}: {self.message}"

    @property
    def transient(self) -> bool:
        return self.status == 0 or self.status == 429 or self.status >= 500

    @property
    def not_found(self) -> bool:
        return self.status == 404

    @property
    def already_exists(self) -> bool:
        return self.status == 409 and self.reason == "AlreadyExists"

    @property
    def conflict(self) -> bool:
        return self.status == 409 and self.reason != "AlreadyExists"


def _from_api_exception(exc: ApiException) -> K8sError:
    reason, message = exc.reason or "", exc.body or ""
    try:
        status_body = json.loads(exc.body or "")
        reason = status_body.get("reason") or reason
        message = status_body.get("message") or message
    except (TypeError, ValueError):
        pass
    retry_after = None
    headers = exc.headers or {}
    if headers.get("Retry-After"):
        try:
            retry_after = float(headers["Retry-After"])
        except ValueError:
            pass
    return K8sError(status=int(exc.status or 0), reason=reason, message=str(message)[:2000], retry_after=retry_after)


_client_lock = threading.Lock()
_api_client: client.ApiClient | None = None


def api_client() -> client.ApiClient:
    """One client per process, configured from K8SDM_KUBECONFIG, in-cluster config or ~/.kube/config."""
    global _api_client
    with _client_lock:
        if _api_client is None:
            configuration = client.Configuration()
            if settings.K8SDM_KUBECONFIG:
                config.load_kube_config(
                    config_file=settings.K8SDM_KUBECONFIG,
                    context=settings.K8SDM_KUBE_CONTEXT or None,
                    client_configuration=configuration,
                )
            else:
                try:
                    config.load_incluster_config(client_configuration=configuration)
                except config.ConfigException:
                    config.load_kube_config(
                        context=settings.K8SDM_KUBE_CONTEXT or None, client_configuration=configuration
                    )
            configuration.retries = False  # we retry, with backoff and Retry-After
            configuration.connection_pool_maxsize = max(16, settings.K8SDM_WORKER_CONCURRENCY * 2)
            _api_client = client.ApiClient(configuration)
        return _api_client


def reset_api_client() -> None:
    global _api_client
    with _client_lock:
        _api_client = None


def _timeout():
    return (min(3.0, settings.K8SDM_K8S_TIMEOUT_SECONDS), settings.K8SDM_K8S_TIMEOUT_SECONDS)


def _diagnosis_timeout():
    seconds = settings.K8SDM_DIAGNOSIS_TIMEOUT_SECONDS
    return (min(1.0, seconds), seconds)


def _call(verb: str, fn, *args, _timeout_value=None, _text: bool = False, **kwargs):
    started = time.perf_counter()
    try:
        response = fn(*args, _preload_content=False, _request_timeout=_timeout_value or _timeout(), **kwargs)
        data = response.data
        if _text:
            return data.decode("utf-8", errors="replace") if data else ""
        return json.loads(data) if data else None
    except ApiException as exc:
        error = _from_api_exception(exc)
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        error = K8sError(status=0, reason=type(exc).__name__, message=str(exc)[:500])
    finally:
        K8S_CALL_SECONDS.labels(verb).observe(time.perf_counter() - started)
    K8S_CALL_ERRORS.labels(verb, str(error.status)).inc()
    raise error


def apps() -> client.AppsV1Api:
    return client.AppsV1Api(api_client())


def get_deployment(namespace: str, name: str) -> dict | None:
    """The live object, or None if it does not exist."""
    try:
        return _call("get", apps().read_namespaced_deployment, name, namespace)
    except K8sError as exc:
        if exc.not_found:
            return None
        raise


def create_deployment(body: dict) -> dict:
    return _call("create", apps().create_namespaced_deployment, body["metadata"]["namespace"], body)


def replace_deployment(body: dict) -> dict:
    meta = body["metadata"]
    return _call("update", apps().replace_namespaced_deployment, meta["name"], meta["namespace"], body)


def delete_deployment(namespace: str, name: str, *, uid: str, resource_version: str) -> None:
    """Delete only the object with this uid at this resourceVersion (409 Conflict otherwise)."""
    body = client.V1DeleteOptions(propagation_policy="Background",
                                  preconditions=client.V1Preconditions(uid=uid, resource_version=resource_version))
    _call("delete", apps().delete_namespaced_deployment, name, namespace, body=body)


def list_deployments(*, namespace: str | None, label_selector: str, resource_version: str | None = None) -> dict:
    """A DeploymentList as a dict (items, metadata.resourceVersion)."""
    kwargs = {"label_selector": label_selector}
    if resource_version:
        kwargs["resource_version"] = resource_version
    if namespace:
        return _call("list", apps().list_namespaced_deployment, namespace, **kwargs)
    return _call("list", apps().list_deployment_for_all_namespaces, **kwargs)


# --- diagnosis reads (for the api: a short timeout, K8SDM_DIAGNOSIS_TIMEOUT_SECONDS) -------------


def core() -> client.CoreV1Api:
    return client.CoreV1Api(_configured_client())


def _configured_client() -> client.ApiClient:
    """The client, or a K8sError when no cluster is configured (the api must answer, not crash)."""
    try:
        return api_client()
    except (config.ConfigException, OSError) as exc:
        raise K8sError(status=0, reason="NotConfigured", message=str(exc)[:500]) from None


def list_pods(namespace: str, label_selector: str) -> list[dict]:
    data = _call("list", core().list_namespaced_pod, namespace, label_selector=label_selector,
                 _timeout_value=_diagnosis_timeout())
    return (data or {}).get("items") or []


def list_events(namespace: str, involved_name: str | None = None, *, kind: str | None = None,
                event_type: str | None = None, limit: int = 1000) -> list[dict]:
    """The core/v1 Events in `namespace` about the object named `involved_name` and/or of `kind`
    (of one type if given), at most `limit`."""
    selector = ",".join(f"{key}={value}" for key, value in (
        ("involvedObject.name", involved_name), ("involvedObject.kind", kind), ("type", event_type)) if value)
    data = _call("list", core().list_namespaced_event, namespace, field_selector=selector, limit=limit,
                 _timeout_value=_diagnosis_timeout())
    return (data or {}).get("items") or []


def read_pod_log(namespace: str, pod: str, *, container: str | None = None, tail_lines: int | None = None,
                 since_seconds: int | None = None, previous: bool = False, limit_bytes: int | None = None) -> str:
    """A pod's log as text (bounded by the caller's tail_lines and limit_bytes)."""
    kwargs = {"previous": previous}
    for key, value in (("container", container), ("tail_lines", tail_lines), ("since_seconds", since_seconds),
                       ("limit_bytes", limit_bytes)):
        if value is not None:
            kwargs[key] = value
    return _call("log", core().read_namespaced_pod_log, pod, namespace, _timeout_value=_diagnosis_timeout(),
                 _text=True, **kwargs)


# --- watching (for the watcher) ------------------------------------------------------------------


class WatchStream:
    """An open watch: iterate it for events; `cancel()`, from any thread, ends the iteration at once."""

    def __init__(self, resp):
        self._resp = resp
        self._cancelled = False

    def cancel(self) -> None:
        self._cancelled = True
        try:
            self._resp.shutdown()  # unblocks a read waiting on the socket
        except Exception:  # noqa: BLE001 - already closed
            pass

    def __iter__(self):
        from kubernetes.watch.watch import iter_resp_lines

        try:
            for line in iter_resp_lines(self._resp):
                if self._cancelled:
                    return
                if not line:
                    continue
                event = json.loads(line)
                if event.get("type") == "ERROR":
                    obj = event.get("object") or {}
                    raise K8sError(status=int(obj.get("code") or 500), reason=obj.get("reason", "Error"),
                                   message=obj.get("message", ""))
                yield event
        except (urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
            if self._cancelled:
                return
            raise K8sError(status=0, reason=type(exc).__name__, message=str(exc)[:500]) from None
        finally:
            self._resp.close()
            self._resp.release_conn()


def watch_deployments(*, namespace: str | None, label_selector: str, resource_version: str, timeout_seconds: int,
                      read_timeout: float) -> WatchStream:
    """Open a watch of the selected Deployments from a resourceVersion, bookmarks included; its
    events ({'type', 'object': dict}) come until the server ends the stream (timeout_seconds).

    Raw lines, not `watch.Watch`: its dict mode cannot handle ERROR events, and parsing into models
    is the watcher's biggest cost at 10,000 objects. An ERROR event becomes a K8sError (410 Expired
    when the resourceVersion is too old: relist). `read_timeout` bounds the wait for any byte, so a
    dead connection can never hang the caller (bookmarks arrive well within it)."""
    api = apps()
    fn, args = (api.list_namespaced_deployment, (namespace,)) if namespace else (
        api.list_deployment_for_all_namespaces, ())
    try:
        resp = fn(
            *args,
            watch=True,
            label_selector=label_selector,
            resource_version=resource_version,
            allow_watch_bookmarks=True,
            timeout_seconds=timeout_seconds,
            _request_timeout=(min(3.0, read_timeout), read_timeout),
            _preload_content=False,
        )
    except ApiException as exc:
        raise _from_api_exception(exc) from None
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise K8sError(status=0, reason=type(exc).__name__, message=str(exc)[:500]) from None
    return WatchStream(resp)

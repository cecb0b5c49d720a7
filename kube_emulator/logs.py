"""``GET /api/v1/namespaces/NS/pods/NAME/log``: a few synthetic lines per container (see
``kubelet.log_lines``), with the parameters and the errors of the real endpoint:
``container``, ``previous``, ``tailLines``, ``sinceSeconds``, ``sinceTime``,
``limitBytes``, ``timestamps`` and ``follow`` (streams a running container's new lines
until it stops, the pod goes away or the client hangs up)."""
from __future__ import annotations

import asyncio
import time
from typing import Optional

from aiohttp import web

from . import errors
from .clock import parse_rfc3339
from .handlers import require
from .kubelet import log_lines, next_tick
from .resources import PODS
from .router import truthy
from .store import Store

WAITING = {"ErrImagePull": "image can't be pulled",
           "ImagePullBackOff": "trying and failing to pull image"}


def _int_param(q, name: str, minimum: int) -> Optional[int]:
    raw = q.get(name)
    if raw in (None, ""):
        return None
    try:
        value = int(raw)
    except ValueError:
        raise errors.bad_request(f'{name}: invalid value "{raw}": not an integer')
    if value < minimum:
        raise errors.invalid("PodLogOptions", "", "", [errors.invalid_value(
            name, value, f"must be greater than {'or equal to ' if minimum == 0 else ''}"
                         f"{0 if minimum == 0 else minimum - 1}")])
    return value


def _container(pod: dict, name: str, wanted: Optional[str]) -> str:
    spec = pod.get("spec") or {}
    names = [c.get("name") for c in spec.get("containers") or []]
    init = [c.get("name") for c in spec.get("initContainers") or []]
    if not wanted:
        if len(names) == 1:
            return names[0]
        raise errors.bad_request(f"a container name must be specified for pod {name}, choose "
                                 f"one of: [{' '.join(names)}] or one of the init containers: "
                                 f"[{' '.join(init)}]" if init else
                                 f"a container name must be specified for pod {name}, choose "
                                 f"one of: [{' '.join(names)}]")
    if wanted not in names and wanted not in init:
        raise errors.bad_request(f"container {wanted} is not valid for pod {name}")
    return wanted


def _refusal(pod: dict, name: str, container: str, previous: bool) -> errors.ApiError:
    if previous:
        return errors.bad_request(f'previous terminated container "{container}" in pod '
                                  f'"{name}" not found')
    st = next((cs for cs in (pod.get("status") or {}).get("containerStatuses") or []
               if cs.get("name") == container), {})
    reason = (((st.get("state") or {}).get("waiting") or {}).get("reason")) or "ContainerCreating"
    return errors.bad_request(f'container "{container}" in pod "{name}" is waiting to start: '
                              f'{WAITING.get(reason, reason)}')


def _format(t: float, text: str, timestamps: bool) -> bytes:
    if timestamps:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + \
            f".{int((t % 1) * 1e9):09d}Z "
        return (stamp + text + "\n").encode()
    return (text + "\n").encode()


async def serve(request: web.Request, store: Store, ns: str, name: str) -> web.StreamResponse:
    q = request.query
    pod = require(store, PODS, ns, name).obj
    container = _container(pod, name, q.get("container"))
    previous = truthy(q.get("previous"))
    follow = truthy(q.get("follow")) and not previous
    timestamps = truthy(q.get("timestamps"))
    tail = _int_param(q, "tailLines", 0)
    since = _int_param(q, "sinceSeconds", 1)
    limit = _int_param(q, "limitBytes", 1)
    since_time = q.get("sinceTime")
    if since is not None and since_time:
        raise errors.invalid("PodLogOptions", "", "", [errors.cause(
            "sinceSeconds", "FieldValueForbidden",
            "Forbidden: at most one of `sinceTime` or `sinceSeconds` may be specified")])
    if since_time and parse_rfc3339(since_time.split(".")[0].rstrip("Z") + "Z") is None:
        raise errors.bad_request(f'sinceTime: invalid value "{since_time}"')
    if not (pod.get("spec") or {}).get("nodeName"):
        return web.Response(body=b"", content_type="text/plain")  # not scheduled: no logs yet
    now = time.time()
    lines = log_lines(pod, container, previous, now)
    if lines is None:
        raise _refusal(pod, name, container, previous)
    start = now - since if since is not None else \
        parse_rfc3339(since_time.split(".")[0].rstrip("Z") + "Z") if since_time else None
    if start is not None:
        lines = [ln for ln in lines if ln[0] >= start]
    if tail is not None:
        lines = lines[len(lines) - tail:] if tail else []
    body = b"".join(_format(t, text, timestamps) for t, text in lines)
    if limit is not None:
        body = body[:limit]
    if not follow:
        return web.Response(body=body, content_type="text/plain")
    resp = web.StreamResponse(status=200, headers={"Content-Type": "text/plain"})
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    sent = len(body)
    if body:
        await resp.write(body)
    last = lines[-1][0] if lines else now
    uid = pod["metadata"].get("uid")
    try:
        while limit is None or sent < limit:
            cur = store.get(PODS.name, ns, name)
            if cur is None or cur.uid != uid:
                break
            tick = next_tick(cur.obj, container, last)
            if tick is None:
                break  # the container stopped
            tr = request.transport
            if tr is None or tr.is_closing():
                break
            wait = tick[0] - time.time()
            if wait > 0:
                await asyncio.sleep(min(wait, 0.5))
                continue
            chunk = _format(tick[0], tick[1], timestamps)
            if limit is not None:
                chunk = chunk[:limit - sent]
            await resp.write(chunk)
            sent += len(chunk)
            last = tick[0]
        await resp.write_eof()
    except (ConnectionResetError, ConnectionError):
        pass
    return resp

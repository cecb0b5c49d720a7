"""The admin HTTP API under ``/_emulator/`` (faults, reset, drop watches, compaction,
controller and watch settings, stats). Never subject to fault injection or counted in the
request stats. See README.md for the endpoints."""
from __future__ import annotations

import json

from aiohttp import web

from . import errors
from .faults import _rule


async def handle(emu, request: web.Request, path: str) -> dict:
    """Answer one admin request against the ``Emulator`` ``emu``; returns the JSON body."""
    m = request.method
    body: dict = {}
    if m in ("POST", "PUT", "PATCH"):
        raw = await request.read()
        if raw.strip():
            try:
                body = json.loads(raw)
            except ValueError as e:
                raise errors.bad_request(f"invalid JSON: {e}")
        if not isinstance(body, dict):
            raise errors.bad_request("admin request body must be a JSON object")
    if path == "stats" and m == "GET":
        return emu.stats()
    if path == "faults":
        return _faults(emu, m, body)
    if path == "reset" and m == "POST":
        emu.reset()
        return {"reset": True, "resourceVersion": str(emu.store.rv)}
    if path == "drop-watches" and m == "POST":
        return {"dropped": emu.drop_watches(abort=bool(body.get("abort")))}
    if path == "compact" and m == "POST":
        return {"compactedAt": str(emu.compact())}
    if path == "controller":
        if m == "POST":
            try:
                emu.controller.configure(paused=body.get("paused"),
                                         step_delay=body.get("step_delay"),
                                         failure_deadline=body.get("failure_deadline"),
                                         node_cpu=body.get("node_cpu"),
                                         node_memory=body.get("node_memory"))
            except (TypeError, ValueError) as e:
                raise errors.bad_request(str(e))
        elif m != "GET":
            raise errors.method_not_allowed()
        return emu.controller.info()
    if path == "config":
        if m == "POST" and "bookmark_interval" in body:
            emu.bookmark_interval = float(body["bookmark_interval"])
        return {"bookmark_interval": emu.bookmark_interval}
    raise errors.path_not_found()


def _faults(emu, method: str, body: dict) -> dict:
    faults = emu.faults
    if method == "DELETE":
        faults.clear()
    elif method == "POST":
        try:
            if body.get("append"):
                for r in body.get("errors") or []:
                    faults.add_rule(_rule(r))
                if "latency_ms" in body:
                    faults.latency_ms = float(body["latency_ms"] or 0)
            else:
                faults.configure(body)
        except (ValueError, TypeError) as e:
            raise errors.bad_request(str(e))
    elif method != "GET":
        raise errors.path_not_found()
    return faults.describe()

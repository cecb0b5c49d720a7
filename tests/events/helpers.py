"""A real SSE client (http.client over a socket, parsing the event-stream format) and a helper
to start the ASGI events server (uvicorn on k8sdm.asgi) in a test's stack."""

from __future__ import annotations

import http.client
import json
import sys
import threading
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from tests.stack import Proc, Stack, wait_until


def start_events_server(stack: Stack) -> tuple[Proc, str]:
    from devstack._proc import free_port, wait_for_port

    port = free_port()
    proc = stack._spawn("events", [sys.executable, "-m", "uvicorn", "k8sdm.asgi:application", "--host", "127.0.0.1",
                                   "--port", str(port), "--no-access-log", "--timeout-graceful-shutdown", "2"])
    wait_for_port("127.0.0.1", port, timeout=30, proc=proc.proc, what="the events server")
    return proc, f"http://127.0.0.1:{port}"


@dataclass
class SseEvent:
    id: int
    kind: str
    data: dict


@dataclass
class SseClient:
    """Opens GET <base>/api/v1/events as `user` and collects what arrives, in a thread."""

    base: str
    user: str
    query: str = ""
    last_event_id: int | None = None
    events: list[SseEvent] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    status: int | None = None
    headers: dict = field(default_factory=dict)
    error_body: dict | None = None
    ended: bool = False

    def __post_init__(self):
        parts = urlsplit(self.base)
        self._conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        headers = {"X-User-Id": self.user, "Accept": "text/event-stream"}
        if self.last_event_id is not None:
            headers["Last-Event-ID"] = str(self.last_event_id)
        try:
            self._conn.request("GET", "/api/v1/events" + (f"?{self.query}" if self.query else ""), headers=headers)
            response = self._conn.getresponse()
            self.headers = {k.lower(): v for k, v in response.getheaders()}
            self.status = response.status
            if response.status != 200:
                self.error_body = json.loads(response.read())
                return
            fields: dict[str, str] = {}
            while True:
                raw = response.readline()
                if not raw:
                    break
                line = raw.decode().rstrip("\n")
                if line == "":
                    if "data" in fields:
                        with self._lock:
                            self.events.append(SseEvent(int(fields["id"]), fields.get("event", "message"),
                                                        json.loads(fields["data"])))
                    fields = {}
                elif line.startswith(":"):
                    with self._lock:
                        self.comments.append(line[1:].strip())
                else:
                    name, _, value = line.partition(":")
                    fields[name] = value[1:] if value.startswith(" ") else value
        except (OSError, http.client.HTTPException, ValueError, AttributeError):  # closed by close()
            pass
        finally:
            self.ended = True

    def wait_connected(self) -> "SseClient":
        wait_until(lambda: "connected" in self.comments or self.ended, message=f"{self.user}'s stream to open")
        assert self.status == 200 and "connected" in self.comments, (self.status, self.error_body)
        return self

    def wait_for(self, predicate, message: str, timeout: float = 30.0) -> list[SseEvent]:
        wait_until(lambda: predicate(self.snapshot()), timeout=timeout, message=message)
        return self.snapshot()

    def snapshot(self) -> list[SseEvent]:
        with self._lock:
            return list(self.events)

    def kinds(self) -> list[tuple[str, str]]:
        return [(e.kind, e.data["identifier"]) for e in self.snapshot()]

    def close(self) -> None:
        try:
            self._conn.sock and self._conn.sock.shutdown(2)
        except OSError:
            pass
        self._conn.close()
        self._thread.join(5)


class Receiver:
    """A real HTTP server on 127.0.0.1 that records every POST and answers from a script:
    `script` is a list of status codes (or "hang": hold the answer until the test ends) used in
    order, then `default` for the rest."""

    def __init__(self, script=(), default: int = 200):
        import http.server

        self.script, self.default = list(script), default
        self.received: list[dict] = []
        self.release = threading.Event()
        self._lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver._lock:
                    receiver.received.append({"headers": {k.lower(): v for k, v in self.headers.items()},
                                              "body": body, "path": self.path})
                    answer = receiver.script.pop(0) if receiver.script else receiver.default
                if answer == "hang":
                    receiver.release.wait(60)
                    return
                self.send_response(answer)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/k8sdm"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def bodies(self) -> list[dict]:
        with self._lock:
            return [json.loads(r["body"]) for r in self.received]

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

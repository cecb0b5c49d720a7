"""The load generator of the system and recovery benchmarks: Debian's `wrk` with tests/bench/load.lua.

wrk is a C event loop: about 20 us of CPU per request, so on this 2-core machine the load
generator takes a few percent of a core where a Python client would take a third. The Lua script
sends on a fixed schedule (open loop) and counts answers by status code.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

LUA = Path(__file__).resolve().with_name("load.lua")


def ensure_wrk() -> str:
    """The wrk binary; installed with apt-get when missing (Debian package `wrk`)."""
    found = shutil.which("wrk")
    if not found:
        print("installing wrk (apt-get install wrk)", flush=True)
        subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=True, capture_output=True,
                       env={"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
        found = shutil.which("wrk")
    return found


def start(url: str, *, mode: str, rate: float, seconds: float, prefix: str, pool: Path | None = None,
          threads: int = 2, connections: int = 64) -> subprocess.Popen:
    """Start wrk in the background; `finish()` waits for it and returns its result."""
    args = [ensure_wrk(), "-t", str(threads), "-c", str(connections), "-d", f"{max(1, round(seconds))}s",
            "--timeout", "10s", "-s", str(LUA), url, "--", mode, str(rate), prefix, str(threads)]
    if pool:
        args.append(str(pool))
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(proc: subprocess.Popen) -> dict:
    out = proc.communicate()[0]
    for line in out.splitlines():
        if line.startswith("RESULT "):
            result = json.loads(line[len("RESULT "):])
            result["statuses"] = {int(k): v for k, v in result["statuses"].items()}
            return result
    raise RuntimeError(f"wrk failed (exit {proc.returncode}):\n{out[-2000:]}")


def run(url: str, **kwargs) -> dict:
    return finish(start(url, **kwargs))

"""``python -m kube_emulator --port N [--host H] [--kubeconfig PATH]``"""
from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from aiohttp import web

from .app import Emulator
from .kubeconfig import write_kubeconfig


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m kube_emulator",
                                description="Kubernetes API emulator (Deployments, ReplicaSets, "
                                            "Pods, Events, Namespaces, ResourceQuotas). Not a "
                                            "cluster.")
    p.add_argument("--port", type=int, default=8001, help="0 picks a free port (printed)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--kubeconfig", help="write a kubeconfig pointing at this emulator here")
    p.add_argument("--step-delay", type=float, default=0.05,
                   help="seconds per simulated controller step (default 0.05)")
    p.add_argument("--failure-deadline", type=float, default=1.0,
                   help="seconds before a failing-image rollout reports ProgressDeadlineExceeded")
    p.add_argument("--event-log-size", type=int, default=10000,
                   help="events kept for watch resumption (older RVs answer 410)")
    p.add_argument("--bookmark-interval", type=float, default=1.0)
    p.add_argument("--node-cpu", default="4",
                   help="allocatable CPU of the one node; pods requesting more are unschedulable")
    p.add_argument("--node-memory", default="16Gi", help="allocatable memory of the node")
    p.add_argument("--event-ttl", type=float, default=3600.0,
                   help="seconds an Event is kept after its last update (default 3600)")
    p.add_argument("--data-dir", help="keep the objects in DIR/objects.json and load them at "
                                      "start (default: in memory only)")
    p.add_argument("--quiet", action="store_true", help="do not log each request")
    return p.parse_args(argv)


async def amain(args) -> int:
    emu = Emulator(step_delay=args.step_delay, failure_deadline=args.failure_deadline,
                   event_log_size=args.event_log_size, bookmark_interval=args.bookmark_interval,
                   log_requests=not args.quiet, node_cpu=args.node_cpu,
                   node_memory=args.node_memory, event_ttl=args.event_ttl,
                   data_dir=args.data_dir)
    runner = web.AppRunner(emu.make_app(), access_log=None, handle_signals=False,
                           shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, args.host, args.port, reuse_address=True)
    client_host = "127.0.0.1" if args.host in ("0.0.0.0", "", "::") else args.host
    if ":" in client_host:
        client_host = f"[{client_host}]"
    if args.kubeconfig and args.port:
        # before listening: whoever sees the port open finds the kubeconfig too
        write_kubeconfig(args.kubeconfig, f"http://{client_host}:{args.port}")
    await site.start()
    port = args.port
    if not port:  # --port 0: report the port the OS picked
        port = site._server.sockets[0].getsockname()[1]
    url = f"http://{client_host}:{port}"
    if args.kubeconfig and not args.port:
        write_kubeconfig(args.kubeconfig, url)
    print(f"kube-emulator listening on {url}"
          + (f" (kubeconfig: {args.kubeconfig})" if args.kubeconfig else "")
          + (f" (data: {args.data_dir}, {emu.restored} objects restored)" if args.data_dir
             else ""), file=sys.stderr, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    print("kube-emulator shutting down", file=sys.stderr, flush=True)
    await runner.cleanup()
    return 0


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    args = parse_args(argv)
    return asyncio.run(amain(args))


if __name__ == "__main__":
    sys.exit(main())

"""gunicorn settings for the api in the container: `gunicorn --config docker/gunicorn.conf.py k8sdm.wsgi`.

Flags on the command line still win, and gunicorn's own WEB_CONCURRENCY sets the worker count.
With PROMETHEUS_MULTIPROC_DIR set (the api only: the worker and watcher must not see it), the
directory is emptied when the master starts, so a restarted container does not add up the
counters of its previous life, and a dead worker's files are marked as such.

Each worker process owns one publisher of requests (requests_app/publishing.py): created and
started once the worker has loaded the application (Django is set up by then; gunicorn's
post_fork runs before that), stopped when the worker exits.
"""

import os
import shutil
from pathlib import Path

bind = "0.0.0.0:8000"
workers = int(os.environ.get("WEB_CONCURRENCY", "3"))
# Threads (the gthread worker): a long-poll (`?wait=N`) occupies a thread, not a whole process,
# and a connection that is open but idle (a gateway's keep-alive, a slow client) waits in the
# worker's poller instead of blocking a sync worker until it speaks. GUNICORN_THREADS sets it.
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
timeout = 30
# Below the pod's terminationGracePeriodSeconds (30): in-flight requests finish on SIGTERM.
graceful_timeout = 20
keepalive = 5
accesslog = "-"
# The control socket would be created under ~/.gunicorn; the root filesystem is read-only.
control_socket_disable = True
# Heartbeat files of the workers: /tmp is an emptyDir (tmpfs in compose).
worker_tmp_dir = "/tmp"


def on_starting(server):
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        path = Path(directory)
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True, exist_ok=True)


def child_exit(server, worker):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


def post_worker_init(worker):
    from requests_app import publishing

    publishing.install(publishing.RequestPublisher().start())


def worker_exit(server, worker):
    from requests_app import publishing

    publisher = publishing.install(None)
    if publisher is not None:
        publisher.stop()

"""`manage.py runworker`: the JetStream consumer that applies requests and syncs deployments."""

import threading

from django.conf import settings
from django.core.management.base import BaseCommand

from k8sdm.messaging.publisher import Publisher
from k8sdm.runtime import exit_now, install_stop_signals, set_application_name, start_metrics_server
from requests_app.worker import RequestWorker


class Command(BaseCommand):
    help = "Apply deployment requests to Kubernetes and mirror live deployments into Postgres."

    def add_arguments(self, parser):
        parser.add_argument("--concurrency", type=int, default=settings.K8SDM_WORKER_CONCURRENCY)
        parser.add_argument("--metrics-port", type=int, default=settings.K8SDM_WORKER_METRICS_PORT,
                            help="0 disables the metrics endpoint")
        parser.add_argument("--no-relay", action="store_true", help="do not run the outbox relay in this process")

    def handle(self, *args, concurrency, metrics_port, no_relay, **options):
        set_application_name("k8sdm-worker")
        stop = threading.Event()
        install_stop_signals(stop)
        start_metrics_server(metrics_port)
        publisher = None if no_relay else Publisher(name="k8sdm-worker-relay", first_connect_wait=0).start()
        try:
            code = RequestWorker(stop=stop, publisher=publisher, concurrency=concurrency).run()
        finally:
            if publisher is not None:
                publisher.stop(timeout=1.0)
        exit_now(code)

"""`manage.py runwatcher`: the informer on managed Deployments (one active at a time)."""

import threading

from django.conf import settings
from django.core.management.base import BaseCommand

from deployments_app.watcher import DeploymentWatcher
from k8sdm.messaging.publisher import Publisher
from k8sdm.runtime import exit_now, install_stop_signals, set_application_name, start_metrics_server


class Command(BaseCommand):
    help = "Watch managed Deployments and publish their keys for the worker to sync."

    def add_arguments(self, parser):
        parser.add_argument("--metrics-port", type=int, default=settings.K8SDM_WATCHER_METRICS_PORT,
                            help="0 disables the metrics endpoint")

    def handle(self, *args, metrics_port, **options):
        set_application_name("k8sdm-watcher")
        stop = threading.Event()
        install_stop_signals(stop)
        start_metrics_server(metrics_port)
        publisher = Publisher(name="k8sdm-watcher").start()
        try:
            code = DeploymentWatcher(stop=stop, publisher=publisher).run()
        finally:
            publisher.stop(timeout=1.0)
        exit_now(code)

"""`manage.py runnotifier`: delivers events to the users' webhooks."""

import threading

from django.conf import settings
from django.core.management.base import BaseCommand

from events_app.notifier import WebhookNotifier
from k8sdm.runtime import install_stop_signals, set_application_name, start_metrics_server


class Command(BaseCommand):
    help = "Deliver events to the users' webhooks (signed POSTs, retries, delivery records)."

    def add_arguments(self, parser):
        parser.add_argument("--concurrency", type=int, default=settings.K8SDM_NOTIFIER_CONCURRENCY)
        parser.add_argument("--metrics-port", type=int, default=settings.K8SDM_NOTIFIER_METRICS_PORT,
                            help="0 disables the metrics endpoint")

    def handle(self, *args, concurrency, metrics_port, **options):
        set_application_name("k8sdm-notifier")
        stop = threading.Event()
        install_stop_signals(stop)
        start_metrics_server(metrics_port)
        raise SystemExit(WebhookNotifier(stop=stop, concurrency=concurrency).run())

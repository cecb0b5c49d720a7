"""WSGI entry point: `gunicorn k8sdm.wsgi`."""
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "k8sdm.settings")

application = get_wsgi_application()

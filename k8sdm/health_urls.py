from django.urls import path

from k8sdm import health

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
]

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="api-v1:index"), name="root"),
    path("admin/", admin.site.urls),
    path("api/", include("k8sdm.api.urls")),
    path("", include("k8sdm.health_urls")),
]

# JSON (the one error shape) on /api/, /healthz, /readyz and /metrics; Django's pages elsewhere.
handler400 = "k8sdm.api.errors.handler400"
handler403 = "k8sdm.api.errors.handler403"
handler404 = "k8sdm.api.errors.handler404"
handler500 = "k8sdm.api.errors.handler500"

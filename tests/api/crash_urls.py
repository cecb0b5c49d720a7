"""A URLconf for the error-shape tests: the real routes plus views that crash."""

from django.urls import include, path, re_path
from rest_framework.views import APIView


class CrashingApiView(APIView):
    authentication_classes = []
    permission_classes = []
    throttle_classes = []

    def get(self, request, rest=""):
        raise RuntimeError("boom in a DRF view")


def crashing_django_view(request):
    raise RuntimeError("boom in a Django view")


urlpatterns = [
    path("api/v1/crash/drf", CrashingApiView.as_view()),
    re_path(r"^api/v1/crash/any/(?P<rest>[\s\S]+)$", CrashingApiView.as_view()),
    path("api/v1/crash/django", crashing_django_view),
    path("", include("k8sdm.urls")),
]

handler404 = "k8sdm.api.errors.handler404"
handler500 = "k8sdm.api.errors.handler500"

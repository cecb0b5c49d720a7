"""The interactive docs pages, usable without internet.

Swagger UI and Redoc come from drf-spectacular-sidecar's static files. drf-spectacular's Redoc
template also links Google Fonts; this page is the same template without those links (Redoc falls
back to the system's fonts, set in REDOC_THEME). Swagger UI's online validator badge is off
(SPECTACULAR_SETTINGS["SWAGGER_UI_SETTINGS"]["validatorUrl"] is None in settings.py).
"""

from __future__ import annotations

import json

from django.http import HttpResponse
from django.template import engines
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularRedocView

SYSTEM_FONTS = 'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif'
REDOC_THEME = {"theme": {"typography": {"fontFamily": SYSTEM_FONTS, "headings": {"fontFamily": SYSTEM_FONTS}}}}

_PAGE = engines["django"].from_string(
    """{% extends "drf_spectacular/redoc.html" %}
{% block head %}
<title>{{ title|default:"Redoc" }}</title>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body { margin: 0; padding: 0; }</style>
{% endblock head %}"""
)


class OfflineRedocView(SpectacularRedocView):
    @extend_schema(exclude=True)
    def get(self, request, *args, **kwargs):
        data = super().get(request, *args, **kwargs).data
        data["settings"] = json.dumps(REDOC_THEME)
        return HttpResponse(_PAGE.render(data, request))

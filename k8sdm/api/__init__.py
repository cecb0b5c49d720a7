"""The REST API's cross-cutting parts: identity, errors, throttling, pagination, metrics, schema.

Views live in their apps (requests_app/views.py, deployments_app/views.py); this package holds what
every API view shares, so no view can forget it.
"""

"""/api/v1/webhooks: a user's webhook endpoints and the record of their deliveries.

GET    /api/v1/webhooks                         the caller's endpoints (newest first)
POST   /api/v1/webhooks                         register one: 201 with its secret, shown only here
GET    /api/v1/webhooks/{id}                    one (404 if it is not the caller's)
PATCH  /api/v1/webhooks/{id}                    change it; {"active": true} enables a disabled one
DELETE /api/v1/webhooks/{id}                    remove it (and its delivery records)
GET    /api/v1/webhooks/{id}/deliveries         its deliveries, newest first (?status=)

The event stream itself (GET /api/v1/events) is served by the ASGI server: events_app/sse.py.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.viewsets import GenericViewSet

from events_app.models import DeliveryStatus
from events_app.selectors import webhook_deliveries, webhook_get, webhook_list
from events_app.serializers import (
    WebhookCreatedOutputSerializer,
    WebhookCreateInputSerializer,
    WebhookDeliveryFilterSerializer,
    WebhookDeliveryOutputSerializer,
    WebhookOutputSerializer,
    WebhookUpdateInputSerializer,
)
from events_app.services import webhook_create, webhook_delete, webhook_update
from k8sdm.api.pagination import NewestFirstPagination
from k8sdm.api.schema import READ_ERRORS, WRITE_ERRORS, error_responses
from k8sdm.api.views import ApiViewMixin

ID_PARAM = OpenApiParameter("webhook_id", type=str, location=OpenApiParameter.PATH, description="The webhook's id.")
TAGS = ["webhooks"]


class WebhookViewSet(ApiViewMixin, GenericViewSet):
    serializer_class = WebhookOutputSerializer
    pagination_class = NewestFirstPagination

    def get_queryset(self):
        return webhook_list(user=self.request.user.user)

    @extend_schema(operation_id="webhook_list", summary="The caller's webhooks", tags=TAGS,
                   responses={200: WebhookOutputSerializer(many=True), **error_responses(*READ_ERRORS)})
    def list(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(WebhookOutputSerializer(page, many=True).data)

    @extend_schema(operation_id="webhook_create", summary="Register a webhook", tags=TAGS,
                   request=WebhookCreateInputSerializer,
                   responses={201: WebhookCreatedOutputSerializer, **error_responses(*WRITE_ERRORS)},
                   description="The answer carries the signing `secret`, once: it is never shown again. "
                   "The URL must resolve to public addresses (see docs/events.md).")
    def create(self, request):
        serializer = WebhookCreateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        endpoint = webhook_create(user_external_id=request.user.external_id, **serializer.validated_data)
        return Response(WebhookCreatedOutputSerializer(endpoint).data, status=status.HTTP_201_CREATED)

    @extend_schema(operation_id="webhook_retrieve", summary="One of the caller's webhooks", tags=TAGS,
                   parameters=[ID_PARAM], responses={200: WebhookOutputSerializer, **error_responses(*READ_ERRORS)})
    def retrieve(self, request, webhook_id: str):
        return Response(WebhookOutputSerializer(webhook_get(user=request.user.user, webhook_id=webhook_id)).data)

    @extend_schema(operation_id="webhook_update", summary="Change a webhook, or enable it again", tags=TAGS,
                   parameters=[ID_PARAM], request=WebhookUpdateInputSerializer,
                   responses={200: WebhookOutputSerializer, **error_responses(*WRITE_ERRORS)})
    def partial_update(self, request, webhook_id: str):
        endpoint = webhook_get(user=request.user.user, webhook_id=webhook_id)
        serializer = WebhookUpdateInputSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        endpoint = webhook_update(endpoint=endpoint, changes=serializer.validated_data)
        return Response(WebhookOutputSerializer(endpoint).data)

    @extend_schema(operation_id="webhook_delete", summary="Remove a webhook", tags=TAGS, parameters=[ID_PARAM],
                   responses={204: None, **error_responses(*READ_ERRORS)})
    def destroy(self, request, webhook_id: str):
        webhook_delete(endpoint=webhook_get(user=request.user.user, webhook_id=webhook_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookDeliveryViewSet(ApiViewMixin, GenericViewSet):
    serializer_class = WebhookDeliveryOutputSerializer
    pagination_class = NewestFirstPagination
    filter_serializer_class = WebhookDeliveryFilterSerializer

    @extend_schema(operation_id="webhook_delivery_list", summary="The deliveries of one of the caller's webhooks",
                   tags=TAGS, parameters=[ID_PARAM, OpenApiParameter("status", str, enum=DeliveryStatus.values)],
                   responses={200: WebhookDeliveryOutputSerializer(many=True), **error_responses(*READ_ERRORS)})
    def list(self, request, webhook_id: str):
        endpoint = webhook_get(user=request.user.user, webhook_id=webhook_id)
        filters = WebhookDeliveryFilterSerializer(data=request.query_params.dict())
        filters.is_valid(raise_exception=True)
        page = self.paginate_queryset(webhook_deliveries(endpoint=endpoint, **filters.validated_data))
        return self.get_paginated_response(WebhookDeliveryOutputSerializer(page, many=True).data)

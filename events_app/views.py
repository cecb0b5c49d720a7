"""/api/v1/webhooks: a user's webhook endpoints and the record of their deliveries.

GET    /api/v1/webhooks                         the caller's endpoints (newest first)
POST   /api/v1/webhooks                         register one: 201 with its secret, shown only here
GET    /api/v1/webhooks/{id}                    one (404 if it is not the caller's)
PATCH  /api/v1/webhooks/{id}                    change it; {"active": true} enables a disabled one
DELETE /api/v1/webhooks/{id}                    remove it (and its delivery records)
GET    /api/v1/webhooks/{id}/deliveries         its deliveries, newest first (?status=)

The event stream itself (GET /api/v1/events) is served by the ASGI server: events_app/sse.py.
`EventStreamView` is its entry in the OpenAPI schema and the API index; on the WSGI api (where a
stream would hold a thread) it checks the request like the stream does and answers a JSON 404
that says where the stream is served.
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.response import Response
from rest_framework.views import APIView
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
from events_app.sse import EVENT_ID
from events_app.services import webhook_create, webhook_delete, webhook_update
from k8sdm.api.pagination import NewestFirstPagination
from k8sdm.api.schema import READ_ERRORS, WRITE_ERRORS, ErrorSerializer, error_responses
from k8sdm.api.views import ApiViewMixin
from k8sdm.errors import InvalidInput, NotFound
from k8sdm.messaging import events

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


SSE_EXAMPLE = """: connected

id: 41
event: request.accepted
data: {"id":41,"kind":"request.accepted","time":"2026-01-01T12:00:00.120Z","user":"alice","identifier":"web",\
"namespace":"default","data":{"request_id":"web-v2","action":"UPDATE","status":"CREATED","error":"",\
"attempts":0,"resource_version":"","created_at":"2026-01-01T12:00:00.100Z","finished_at":null,\
"links":{"request":"/api/v1/requests/web-v2","deployment":"/api/v1/deployments/web"}}}

id: 42
event: request.succeeded
data: {"id":42,"kind":"request.succeeded","time":"2026-01-01T12:00:01.480Z","user":"alice","identifier":"web",\
"namespace":"default","data":{"request_id":"web-v2","action":"UPDATE","status":"SUCCESS","error":"",...}}

: heartbeat
""".replace("\\\n", "")


class _JsonWhateverAccepted(BaseContentNegotiation):
    """An SSE client sends Accept: text/event-stream: it gets the JSON answer, not a 406."""

    def select_parser(self, request, parsers):
        return parsers[0]

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class EventStreamView(ApiViewMixin, APIView):
    """GET /api/v1/events on the WSGI api: the schema's and the index's entry for the stream."""

    throttle_classes: list = []
    content_negotiation_class = _JsonWhateverAccepted

    def allowed_query_params(self) -> set[str]:
        return {"identifier", "last_event_id"}

    @extend_schema(
        operation_id="event_stream",
        summary="Your events as they happen (Server-Sent Events)",
        description=(
            "A `text/event-stream` of the caller's events (docs/events.md has the catalogue): one `id:` "
            "(the event id, increasing), `event:` (its kind) and `data:` (the event as JSON) per event, a "
            "`: heartbeat` comment every K8SDM_SSE_HEARTBEAT_SECONDS (15 s). Reconnect with the "
            "`Last-Event-ID` header (or `?last_event_id=` on a first connect) to get what was missed "
            "(within K8SDM_EVENTS_RETENTION_SECONDS), then live events, without gap or repeat. Served by "
            "the events server (`uvicorn k8sdm.asgi:application`, `make run` starts it on port 8001): a "
            "deployment routes `/api/v1/events` there. The WSGI api answers this path with a 404 that "
            "says so. At most K8SDM_SSE_MAX_STREAMS_PER_USER streams per user (429)."
        ),
        tags=["events"],
        parameters=[
            OpenApiParameter("identifier", str, description="Only this deployment's events.",
                             pattern=events.IDENTIFIER.pattern),
            OpenApiParameter("last_event_id", str, pattern=r"^[0-9]{1,19}$",
                             description="Resume after this event id (the Last-Event-ID header wins)."),
            OpenApiParameter("Last-Event-ID", str, location=OpenApiParameter.HEADER, pattern=r"^[0-9]{1,19}$",
                             description="Resume after this event id: what the stream holds after it is "
                                         "replayed first."),
        ],
        responses={
            (200, "text/event-stream"): OpenApiResponse(
                OpenApiTypes.STR,
                description="The stream (never ends by itself; headers `Cache-Control: no-cache`, "
                            "`X-Accel-Buffering: no`).",
                examples=[OpenApiExample("a request accepted, then applied", value=SSE_EXAMPLE)],
            ),
            **error_responses(400, 401, 405, 500),
            404: OpenApiResponse(ErrorSerializer, description="This server is the WSGI api: the stream is "
                                 "served by the events server (k8sdm.asgi)."),
            429: OpenApiResponse(ErrorSerializer, description="too_many_streams: the caller has "
                                 "K8SDM_SSE_MAX_STREAMS_PER_USER streams open already; see Retry-After."),
            503: OpenApiResponse(ErrorSerializer, description="NATS is unreachable, or the server holds "
                                 "K8SDM_SSE_MAX_STREAMS streams; see Retry-After."),
        },
    )
    def get(self, request):
        fields = {}
        identifier = request.query_params.get("identifier")
        if identifier is not None and not events.IDENTIFIER.match(identifier):
            fields["identifier"] = ["must be a DNS-1123 label (lowercase letters, digits and -)"]
        last = request.headers.get("Last-Event-ID", request.query_params.get("last_event_id"))
        if last not in (None, "") and not EVENT_ID.match(last.strip()):
            fields["Last-Event-ID"] = ["must be an event id (a non-negative integer)"]
        if fields:
            raise InvalidInput("The request is invalid: see fields.", fields=fields)
        raise NotFound("The event stream is served by the events server (uvicorn k8sdm.asgi:application), not "
                       "by this WSGI api: route /api/v1/events to it (docs/events.md).")

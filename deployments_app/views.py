"""The caller's deployments: GET /api/v1/deployments/ and GET /api/v1/deployments/{identifier}."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins
from rest_framework.response import Response
from rest_framework.viewsets import GenericViewSet

from deployments_app import diagnosis, validators
from deployments_app.models import DeploymentHealth, DeploymentStatus
from deployments_app.selectors import deployment_get, deployment_list
from deployments_app.serializers import (
    DeploymentDetailOutputSerializer,
    DiagnosisOutputSerializer,
    LogsOutputSerializer,
    LogsQuerySerializer,
    DeploymentFilterSerializer,
    DeploymentOutputSerializer,
)
from k8sdm.api.fields import api_v1_prefix
from k8sdm.api.pagination import NewestFirstPagination
from k8sdm.api.schema import READ_ERRORS, error_responses
from k8sdm.api.views import ApiViewMixin
from requests_app.selectors import request_recent_for_deployment

RECENT_REQUESTS = 10


class DeploymentViewSet(ApiViewMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, GenericViewSet):
    """Read-only: deployments change through requests (requests_app/views.py); a 405 says so."""

    serializer_class = DeploymentOutputSerializer
    pagination_class = NewestFirstPagination
    filter_serializer_class = DeploymentFilterSerializer
    path_params = {"identifier": validators.validate_identifier}
    lookup_field = "identifier"

    def get_queryset(self):
        filters = DeploymentFilterSerializer(data=self.request.query_params.dict())
        filters.is_valid(raise_exception=True)
        return deployment_list(user=self.request.user.user, **filters.validated_data)

    def allowed_query_params(self) -> set[str]:
        if getattr(self, "action", None) == "logs":
            return set(LogsQuerySerializer().fields)
        return super().allowed_query_params()

    def method_hint(self, method: str) -> str:
        prefix = api_v1_prefix()
        create = f"To create a deployment, send POST {prefix}deployments/requests/create."
        if "identifier" not in self.kwargs or method == "POST":
            return f"Deployments are read-only here. {create}"
        target = f"{prefix}deployments/requests/{self.path_value('identifier')}"
        if method == "DELETE":
            return f"To delete this deployment, send DELETE {target}."
        return f"To change this deployment, send PATCH {target} with the fields to change."

    @extend_schema(
        operation_id="deployment_list",
        summary="The caller's deployments",
        tags=["deployments"],
        parameters=[
            OpenApiParameter("status", str, enum=DeploymentStatus.values),
            OpenApiParameter("health", str, enum=DeploymentHealth.values),
            OpenApiParameter("namespace", str, pattern=validators.DNS1123_LABEL.pattern),
        ],
        responses={200: DeploymentOutputSerializer(many=True), **error_responses(*READ_ERRORS)},
    )
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(
        operation_id="deployment_retrieve",
        summary="One of the caller's deployments, with its recent requests",
        tags=["deployments"],
        parameters=[
            OpenApiParameter("identifier", type=str, location=OpenApiParameter.PATH, pattern=validators.DNS1123_LABEL.pattern)
        ],
        responses={200: DeploymentDetailOutputSerializer, **error_responses(*READ_ERRORS)},
    )
    def retrieve(self, request, identifier: str):
        deployment = deployment_get(user=request.user.user, identifier=identifier)
        recent = request_recent_for_deployment(deployment=deployment, limit=RECENT_REQUESTS)
        return Response(DeploymentDetailOutputSerializer(deployment, context={"recent_requests": recent}).data)


    @extend_schema(
        operation_id="deployment_diagnosis",
        summary="Why the deployment is (un)healthy: its pods, Warning events and a summary, read live",
        description="Read from Kubernetes with a short timeout and cached a few seconds; 503 "
                    "`dependency_unavailable` with Retry-After when the API server does not answer.",
        tags=["deployments"],
        parameters=[
            OpenApiParameter("identifier", type=str, location=OpenApiParameter.PATH, pattern=validators.DNS1123_LABEL.pattern)
        ],
        responses={200: DiagnosisOutputSerializer, **error_responses(*READ_ERRORS)},
    )
    def diagnosis(self, request, identifier: str):
        deployment = deployment_get(user=request.user.user, identifier=identifier)
        return Response(diagnosis.diagnose(deployment))

    @extend_schema(
        operation_id="deployment_logs",
        summary="The last log lines of one of the deployment's pods (bounded)",
        tags=["deployments"],
        parameters=[
            OpenApiParameter("identifier", type=str, location=OpenApiParameter.PATH, pattern=validators.DNS1123_LABEL.pattern),
            LogsQuerySerializer,
        ],
        responses={200: LogsOutputSerializer, **error_responses(*READ_ERRORS, 409)},
    )
    def logs(self, request, identifier: str):
        deployment = deployment_get(user=request.user.user, identifier=identifier)
        query = LogsQuerySerializer(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        return Response(diagnosis.pod_logs(deployment, **query.validated_data))

"""A user's own API tokens: /api/v1/tokens/ (list, create) and /api/v1/tokens/{id} (revoke).

Creating a token needs the gateway header or a JWT: a token cannot mint tokens, so a leaked
token cannot outlive its own revocation. Another user's token is 404 like a missing one.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.viewsets import GenericViewSet

from k8sdm.api.errors import Conflict, NotAllowed, NotFound
from k8sdm.api.views import ApiViewMixin
from k8sdm.api.pagination import NewestFirstPagination
from k8sdm.api.schema import READ_ERRORS, error_responses
from users_app.selectors import token_get, token_list
from users_app.serializers import (
    ApiTokenCreatedOutputSerializer,
    ApiTokenCreateInputSerializer,
    ApiTokenOutputSerializer,
)
from users_app.services import TokenLimitReached, token_create, token_revoke, user_get_or_create


class TokenCannotMint(NotAllowed):
    default_code = "token_cannot_create_tokens"


def _token_id(value: str) -> int:
    if not value.isdigit() or len(value) > 18:
        raise ValidationError("must be a token id (digits)")
    return int(value)


class ApiTokenViewSet(ApiViewMixin, mixins.ListModelMixin, GenericViewSet):
    serializer_class = ApiTokenOutputSerializer
    pagination_class = NewestFirstPagination
    path_params = {"id": _token_id}

    def get_queryset(self):
        return token_list(user=self.request.user.user)

    @extend_schema(
        operation_id="token_list", summary="Your API tokens (never their secrets)", tags=["tokens"],
        responses={200: ApiTokenOutputSerializer(many=True), **error_responses(*READ_ERRORS)},
    )
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(
        operation_id="token_create", summary="Create an API token (the secret is shown once)", tags=["tokens"],
        request=ApiTokenCreateInputSerializer,
        responses={201: ApiTokenCreatedOutputSerializer, **error_responses(400, 401, 403, 409, 411, 413, 415, 429, 500, 503)},
        description="Use it as `Authorization: Bearer <token>`. Needs the gateway header or a JWT (403 "
        "token_cannot_create_tokens with a token). 409 too_many_tokens past the server's limit of live tokens.",
    )
    def create(self, request):
        if request.user.mode == "token":
            raise TokenCannotMint("An API token cannot create tokens; sign in through the gateway or with a JWT.")
        serializer = ApiTokenCreateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        days = serializer.validated_data.get("expires_in_days") or settings.K8SDM_TOKEN_MAX_DAYS
        user = request.user.user or user_get_or_create(external_id=request.user.external_id)
        try:
            issued = token_create(
                user=user, name=serializer.validated_data["name"],
                expires_at=timezone.now() + timedelta(days=days), created_by="self",
            )
        except TokenLimitReached as exc:
            raise Conflict(f"Too many live tokens: {exc}. Revoke one first.", code="too_many_tokens") from None
        data = ApiTokenCreatedOutputSerializer(issued.token, context={"secret": issued.secret}).data
        return Response(data, status=status.HTTP_201_CREATED, headers={"Cache-Control": "no-store"})

    @extend_schema(
        operation_id="token_revoke", summary="Revoke one of your API tokens", tags=["tokens"],
        parameters=[OpenApiParameter("id", str, location=OpenApiParameter.PATH, pattern=r"^[0-9]{1,18}$",
                                     description="The token's id (digits), as the list shows it.")],
        responses={204: OpenApiResponse(description="Revoked (also when it already was)."),
                   **error_responses(400, 401, 404, 405, 429, 500, 503)},
    )
    def destroy(self, request, id: str):  # noqa: A002 - the URL's name for it
        token = token_get(user=request.user.user, token_id=_token_id(id))
        if token is None:
            raise NotFound("No such token.")
        token_revoke(token=token, by=f"self ({request.user.mode})")
        return Response(status=status.HTTP_204_NO_CONTENT)

"""Input and output of /api/v1/webhooks."""

from __future__ import annotations

from rest_framework import serializers

from events_app.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint
from events_app.outbound import MAX_URL_LENGTH
from k8sdm.messaging import events


class _WebhookFields(serializers.Serializer):
    url = serializers.CharField(max_length=MAX_URL_LENGTH, help_text="http(s) URL the events are POSTed to.")
    kinds = serializers.ListField(
        child=serializers.ChoiceField(choices=events.KINDS), required=False, allow_empty=True, max_length=20,
        help_text="Event kinds to deliver; empty or absent: every kind.",
    )
    identifier = serializers.RegexField(events.IDENTIFIER, max_length=63, required=False, allow_blank=True,
                                        help_text="Only this deployment's events; empty: all of the caller's.")
    description = serializers.CharField(max_length=200, required=False, allow_blank=True)

    def validate_kinds(self, value):
        return sorted(set(value))


class WebhookCreateInputSerializer(_WebhookFields):
    pass


class WebhookUpdateInputSerializer(_WebhookFields):
    url = serializers.CharField(max_length=MAX_URL_LENGTH, required=False)
    active = serializers.BooleanField(required=False, help_text="true enables a disabled endpoint again.")


class WebhookOutputSerializer(serializers.ModelSerializer):
    status = serializers.SerializerMethodField()
    links = serializers.SerializerMethodField()

    class Meta:
        model = WebhookEndpoint
        fields = ["id", "url", "kinds", "identifier", "description", "active", "status", "disabled_reason",
                  "disabled_at", "failing_since", "consecutive_failures", "last_success_at", "last_failure_at",
                  "created_at", "updated_at", "links"]

    def get_status(self, obj) -> str:
        return "active" if obj.active else "disabled"

    def get_links(self, obj) -> dict:
        return {"self": f"/api/v1/webhooks/{obj.pk}", "deliveries": f"/api/v1/webhooks/{obj.pk}/deliveries"}


class WebhookCreatedOutputSerializer(WebhookOutputSerializer):
    secret = serializers.CharField(help_text="The signing secret. Shown only in this answer: keep it now.")

    class Meta(WebhookOutputSerializer.Meta):
        fields = [*WebhookOutputSerializer.Meta.fields, "secret"]


class WebhookDeliveryOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookDelivery
        fields = ["id", "event_id", "event_kind", "identifier", "status", "attempts", "response_code", "duration_ms",
                  "last_error", "next_attempt_at", "created_at", "finished_at", "payload"]


class WebhookDeliveryFilterSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=DeliveryStatus.values, required=False)

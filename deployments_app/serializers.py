"""Deployment config input (validated with deployments_app/validators.py) and deployment output."""

from __future__ import annotations

from urllib.parse import quote

from drf_spectacular.utils import inline_serializer
from rest_framework import serializers

from deployments_app import validators as v
from deployments_app.models import Deployment, DeploymentHealth, DeploymentStatus
from k8sdm.api.fields import URL_SAFE, StrictCharField, StrictIntegerField, StrictSerializer, api_v1_prefix, iso
from requests_app.models import RequestStatus

# --- input -------------------------------------------------------------------------------------


class EnvVarInputSerializer(StrictSerializer):
    name = StrictCharField(max_length=v.ENV_NAME_MAX, validators=[v.validate_env_name])
    value = StrictCharField(max_length=v.ENV_VALUE_MAX, allow_blank=True, trim_whitespace=False, required=False)


class PortInputSerializer(StrictSerializer):
    name = StrictCharField(max_length=15, allow_blank=True, required=False, validators=[v.validate_port_name])
    container_port = StrictIntegerField(min_value=1, max_value=65535)
    protocol = serializers.ChoiceField(choices=v.PROTOCOLS, required=False)


class QuantitiesInputSerializer(StrictSerializer):
    cpu = StrictCharField(max_length=v.QUANTITY_MAX, required=False, validators=[v.validate_cpu])
    memory = StrictCharField(max_length=v.QUANTITY_MAX, required=False, validators=[v.validate_memory])


class ResourcesInputSerializer(StrictSerializer):
    requests = QuantitiesInputSerializer(required=False)
    limits = QuantitiesInputSerializer(required=False)

    def validate(self, attrs):
        return v.validate_resources(attrs)


def _string_map(max_value: int, validator, help_text: str):
    return serializers.DictField(
        child=StrictCharField(max_length=max_value, allow_blank=True, trim_whitespace=False),
        required=False,
        validators=[validator],
        help_text=help_text,
    )


def _string_list(help_text: str):
    return serializers.ListField(
        child=StrictCharField(max_length=v.COMMAND_ITEM_MAX, allow_blank=True, trim_whitespace=False),
        max_length=v.MAX_COMMAND_ITEMS,
        required=False,
        help_text=help_text,
    )


class DeploymentConfigFieldsSerializer(StrictSerializer):
    """Every config field except identifier, all optional (an UPDATE patch; CREATE adds defaults)."""

    namespace = StrictCharField(
        max_length=63, required=False, validators=[v.validate_namespace],
        help_text="Kubernetes namespace; default from the server (K8SDM_DEFAULT_NAMESPACE), must be allowed there.",
    )
    image = StrictCharField(
        max_length=v.IMAGE_MAX, required=False, validators=[v.validate_image],
        help_text="OCI image reference, e.g. nginx:1.27 or registry.example.com/team/app:1.0@sha256:...",
    )
    replicas = StrictIntegerField(
        min_value=0, required=False, validators=[v.validate_replicas],
        help_text="0 to the server's maximum (K8SDM_MAX_REPLICAS). Default 1.",
    )
    labels = _string_map(v.LABEL_VALUE_MAX, v.validate_labels, "Kubernetes labels; k8sdm.io/* and "
                         "app.kubernetes.io/name|managed-by are reserved.")
    annotations = _string_map(v.ANNOTATION_VALUE_MAX, v.validate_annotations, "Kubernetes annotations; "
                              "k8sdm.io/* reserved.")
    env = serializers.ListField(child=EnvVarInputSerializer(), max_length=v.MAX_ENV, required=False)
    ports = serializers.ListField(child=PortInputSerializer(), max_length=v.MAX_PORTS, required=False)
    resources = ResourcesInputSerializer(required=False)
    command = _string_list("Entrypoint override (container command).")
    args = _string_list("Arguments to the entrypoint.")

    def validate_env(self, value):
        names = [e["name"] for e in value]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise serializers.ValidationError(f"duplicate env names: {', '.join(duplicates)}")
        return value

    def validate_ports(self, value):
        numbers = [(p["container_port"], p.get("protocol", "TCP")) for p in value]
        if len(set(numbers)) != len(numbers):
            raise serializers.ValidationError("duplicate container_port/protocol pairs")
        names = [p["name"] for p in value if p.get("name")]
        if len(set(names)) != len(names):
            raise serializers.ValidationError("duplicate port names")
        return value


class DeploymentConfigInputSerializer(DeploymentConfigFieldsSerializer):
    """A full config (CREATE): identifier and image required, the rest defaulted."""

    identifier = StrictCharField(
        max_length=v.IDENTIFIER_MAX, validators=[v.validate_identifier],
        help_text="DNS-1123 label (lowercase letters, digits, '-'; <= 63); the Kubernetes name. "
        "Unique across all users.",
    )
    image = StrictCharField(max_length=v.IMAGE_MAX, validators=[v.validate_image],
                            help_text="OCI image reference, e.g. nginx:1.27")


# --- output ------------------------------------------------------------------------------------


class EnvVarSerializer(serializers.Serializer):
    name = serializers.CharField()
    value = serializers.CharField(allow_blank=True)


class PortSerializer(serializers.Serializer):
    name = serializers.CharField(allow_blank=True)
    container_port = serializers.IntegerField()
    protocol = serializers.CharField()


class QuantitiesSerializer(serializers.Serializer):
    cpu = serializers.CharField(required=False)
    memory = serializers.CharField(required=False)


class ResourcesSerializer(serializers.Serializer):
    requests = QuantitiesSerializer(required=False)
    limits = QuantitiesSerializer(required=False)


class DeploymentConfigSerializer(serializers.Serializer):
    """The complete config as stored (see deployments_app/validators.py)."""

    identifier = serializers.CharField()
    namespace = serializers.CharField()
    image = serializers.CharField()
    replicas = serializers.IntegerField()
    labels = serializers.DictField(child=serializers.CharField(allow_blank=True))
    annotations = serializers.DictField(child=serializers.CharField(allow_blank=True))
    env = EnvVarSerializer(many=True)
    ports = PortSerializer(many=True)
    resources = ResourcesSerializer()
    command = serializers.ListField(child=serializers.CharField(allow_blank=True))
    args = serializers.ListField(child=serializers.CharField(allow_blank=True))
    restarted_at = serializers.CharField(
        required=False, help_text="Set by a restart request: the pod template's kubectl.kubernetes.io/restartedAt "
        "(absent until the first restart). Not drift.")


class DeploymentLinksSerializer(serializers.Serializer):
    self = serializers.CharField()
    requests = serializers.CharField(help_text="The caller's requests for this deployment.")


class DeploymentOutputSerializer(serializers.Serializer):
    """A deployment: what was asked for (desired_config) and what the cluster shows. Fields are
    declared for the schema; to_representation builds the dict directly (cheap for list pages)."""

    identifier = serializers.CharField()
    namespace = serializers.CharField()
    status = serializers.ChoiceField(choices=DeploymentStatus.choices)
    status_reason = serializers.CharField(allow_blank=True, help_text="Why it is DELETED when no DELETE request did "
                                          "it: its CREATE failed, or the object it tracked is gone or was replaced "
                                          "by one k8sdm did not create ('' otherwise).")
    health = serializers.ChoiceField(choices=DeploymentHealth.choices)
    health_reason = serializers.CharField(allow_blank=True, help_text="Why it is DEGRADED or PROGRESSING, from its "
                                          "conditions ('' when HEALTHY); GET .../diagnosis tells more.")
    desired_config = DeploymentConfigSerializer(help_text="The config of the newest accepted request.")
    image = serializers.CharField(allow_blank=True, help_text="Observed in the cluster.")
    replicas = serializers.IntegerField(allow_null=True, help_text="Observed spec.replicas.")
    ready_replicas = serializers.IntegerField()
    updated_replicas = serializers.IntegerField()
    available_replicas = serializers.IntegerField()
    generation = serializers.IntegerField(allow_null=True)
    observed_generation = serializers.IntegerField(allow_null=True)
    conditions = serializers.ListField(child=serializers.DictField(), help_text="The Deployment's conditions.")
    resource_version = serializers.CharField(allow_blank=True)
    drift = serializers.DictField(help_text="{field: {desired, live}} where the cluster differs; {} in sync.")
    last_synced_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    links = DeploymentLinksSerializer()

    def to_representation(self, obj: Deployment) -> dict:
        prefix = api_v1_prefix()
        return {
            "identifier": obj.identifier,
            "namespace": obj.namespace,
            "status": obj.status,
            "status_reason": obj.status_reason,
            "health": obj.health,
            "health_reason": obj.health_reason,
            "desired_config": obj.desired_config,
            "image": obj.image,
            "replicas": obj.replicas,
            "ready_replicas": obj.ready_replicas,
            "updated_replicas": obj.updated_replicas,
            "available_replicas": obj.available_replicas,
            "generation": obj.generation,
            "observed_generation": obj.observed_generation,
            "conditions": obj.conditions,
            "resource_version": obj.resource_version,
            "drift": obj.drift,
            "last_synced_at": iso(obj.last_synced_at),
            "created_at": iso(obj.created_at),
            "updated_at": iso(obj.updated_at),
            "links": {
                "self": f"{prefix}deployments/{obj.identifier}",
                "requests": f"{prefix}requests/?identifier={obj.identifier}",
            },
        }


class RecentRequestSerializer(serializers.Serializer):
    """A request in a deployment's history (the full request is at links.self)."""

    id = serializers.IntegerField()
    request_id = serializers.CharField()
    action = serializers.CharField()
    status = serializers.CharField(help_text="The request's status: CREATED (pending), SUCCESS or FAILURE.")
    pending = serializers.BooleanField(help_text="True until the request is applied or fails.")
    error = serializers.CharField(allow_blank=True)
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    links = inline_serializer("RecentRequestLinks", {"self": serializers.CharField()})

    def to_representation(self, obj) -> dict:
        return {
            "id": obj.pk,
            "request_id": obj.request_id,
            "action": obj.action,
            "status": obj.status,
            "pending": obj.status == RequestStatus.CREATED,
            "error": obj.error,
            "created_at": iso(obj.created_at),
            "finished_at": iso(obj.finished_at),
            "links": {"self": f"{api_v1_prefix()}requests/{quote(obj.request_id, safe=URL_SAFE)}"},
        }


class DeploymentDetailOutputSerializer(DeploymentOutputSerializer):
    """A deployment with its owner's most recent requests for it (pass them as context["recent_requests"])."""

    recent_requests = RecentRequestSerializer(many=True)

    def to_representation(self, obj: Deployment) -> dict:
        data = super().to_representation(obj)
        data["recent_requests"] = [
            RecentRequestSerializer().to_representation(r) for r in self.context.get("recent_requests", [])
        ]
        return data


class DeploymentFilterSerializer(serializers.Serializer):
    """Query parameters of the deployment list (cursor and page_size belong to the paginator)."""

    status = serializers.ChoiceField(choices=DeploymentStatus.choices, required=False)
    health = serializers.ChoiceField(choices=DeploymentHealth.choices, required=False)
    namespace = StrictCharField(max_length=63, required=False, validators=[v.validate_identifier])




# --- diagnosis and logs ------------------------------------------------------------------------


class LogsQuerySerializer(serializers.Serializer):
    """GET .../logs query parameters, every one checked (a 400 names the one at fault)."""

    pod = serializers.RegexField(v.DNS1123_SUBDOMAIN, max_length=253, required=False,
                                 help_text="A pod of this deployment (default: the first of its current ReplicaSet).")
    container = serializers.RegexField(v.DNS1123_LABEL, max_length=63, required=False)
    tail = serializers.IntegerField(min_value=1, required=False, help_text="Lines from the end (default 100; "
                                    "at most K8SDM_LOGS_MAX_LINES).")
    since = serializers.IntegerField(min_value=1, max_value=30 * 24 * 3600, required=False,
                                     help_text="Only lines of the last N seconds.")
    previous = serializers.BooleanField(required=False, default=False,
                                        help_text="The previous (terminated) run of the container.")

    def validate_tail(self, value: int) -> int:
        from django.conf import settings

        if value > settings.K8SDM_LOGS_MAX_LINES:
            raise serializers.ValidationError(f"Ensure this value is less than or equal to {settings.K8SDM_LOGS_MAX_LINES}.")
        return value


class ReasonSerializer(serializers.Serializer):
    """What Kubernetes says of a state, a condition or an event: a CamelCase reason and a message."""

    reason = serializers.CharField()
    message = serializers.CharField()


class LastTerminationSerializer(serializers.Serializer):
    reason = serializers.CharField()
    exit_code = serializers.IntegerField(allow_null=True)
    finished_at = serializers.CharField(allow_null=True)


class ContainerDiagnosisSerializer(ReasonSerializer):
    name = serializers.CharField()
    image = serializers.CharField()
    state = serializers.ChoiceField(choices=["running", "waiting", "terminated", "unknown"])
    exit_code = serializers.IntegerField(allow_null=True)
    ready = serializers.BooleanField()
    restarts = serializers.IntegerField()
    last_termination = LastTerminationSerializer(allow_null=True)


class PodDiagnosisSerializer(serializers.Serializer):
    name = serializers.CharField()
    replicaset = serializers.CharField()
    phase = serializers.CharField()
    ready = serializers.BooleanField()
    node = serializers.CharField()
    unschedulable = serializers.BooleanField()
    scheduling_message = serializers.CharField()
    containers = ContainerDiagnosisSerializer(many=True)


class EventDiagnosisSerializer(ReasonSerializer):
    object = serializers.CharField(help_text="KIND/NAME")
    count = serializers.IntegerField()
    last_seen = serializers.CharField()


class ConditionSerializer(ReasonSerializer):
    type = serializers.CharField()
    status = serializers.CharField()


class ReplicaSetDiagnosisSerializer(serializers.Serializer):
    """Seen through its pods and Warning events (the api does not read ReplicaSets)."""

    name = serializers.CharField()
    pod_template_hash = serializers.CharField()
    replicas = serializers.IntegerField(help_text="Its pods that exist.")
    ready_replicas = serializers.IntegerField()


class DiagnosisOutputSerializer(serializers.Serializer):
    """Documentation only: the view answers deployments_app.diagnosis.diagnose() as it is."""

    identifier = serializers.CharField()
    namespace = serializers.CharField()
    exists = serializers.BooleanField(help_text="False when the Deployment is not in the cluster.")
    summary = serializers.CharField(help_text='One line, e.g. "2 of 3 pods cannot pull image nginx:fail: '
                                              'ImagePullBackOff".')
    conditions = ConditionSerializer(many=True, help_text="The Deployment's conditions as the sync last recorded them.")
    replicaset = ReplicaSetDiagnosisSerializer(allow_null=True, help_text="The current (newest) ReplicaSet.")
    pods = PodDiagnosisSerializer(many=True)
    events = EventDiagnosisSerializer(many=True, help_text="Warning events, newest first, deduplicated.")


class LogsOutputSerializer(serializers.Serializer):
    pod = serializers.CharField()
    container = serializers.CharField()
    lines = serializers.ListField(child=serializers.CharField())
    truncated = serializers.BooleanField(help_text="True when lines were cut to the line or byte bound.")

"""The rules a deployment config must follow before anything is stored, in one place.

The API validates every request with these (through the serializers in
deployments_app/serializers.py); the services turn the result into a `DeploymentConfig`
(deployments_app/config.py), which the worker trusts and maps to the Kubernetes object. Its stored
form (`DeploymentConfig.to_dict()`) is always complete (every key present, defaults filled in):

    {
        "identifier": "web",                 # DNS-1123 label, <= 63, lowercase; the Kubernetes name
        "namespace": "default",              # one of K8SDM_ALLOWED_NAMESPACES, never kube-system & co.
        "image": "nginx:1.27",               # OCI reference [registry/]repo[:tag][@digest], <= 512
        "replicas": 1,                       # int, 0..K8SDM_MAX_REPLICAS
        "labels": {"tier": "web"},           # str -> str, Kubernetes label rules, no reserved keys
        "annotations": {"team": "a"},        # str -> str, Kubernetes annotation rules, no reserved keys
        "env": [{"name": "A", "value": "1"}],                          # C identifiers, unique, values str
        "ports": [{"name": "http", "container_port": 80, "protocol": "TCP"}],  # name may be ""
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"},  # only sections/keys given;
                      "limits": {"cpu": "1", "memory": "256Mi"}},      # {} when none
        "command": ["nginx"],                # list of str ([] = the image's entrypoint)
        "args": ["-g", "daemon off;"],       # list of str
    }

Quantities are kept as the strings the user wrote (Kubernetes syntax). Nothing else can be in it:
no pod-spec escape hatch (privileged, hostPath, hostNetwork, serviceAccount ...).
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from django.conf import settings
from rest_framework.exceptions import ValidationError

from k8sdm.syntax import DOCKER_HUB, parse_quantity

# Bounds on every list and string (a request body is also capped by K8SDM_MAX_BODY_BYTES).
IDENTIFIER_MAX = 63
IMAGE_MAX = 512
MAX_LABELS = 64
MAX_ANNOTATIONS = 64
LABEL_VALUE_MAX = 63
ANNOTATION_VALUE_MAX = 16 * 1024
ANNOTATIONS_TOTAL_MAX = 32 * 1024
MAX_ENV = 100
ENV_NAME_MAX = 128
ENV_VALUE_MAX = 32 * 1024
MAX_PORTS = 20
MAX_COMMAND_ITEMS = 64
COMMAND_ITEM_MAX = 4096
QUANTITY_MAX = 32
REQUEST_ID_MAX = 128

FORBIDDEN_NAMESPACES = frozenset({"kube-system", "kube-public", "kube-node-lease"})
# Label and annotation prefixes that belong to Kubernetes (and its subdomains) or to k8sdm, compared
# lowercased: a user may set none of them, whatever the case.
RESERVED_PREFIX_DOMAINS = ("kubernetes.io", "k8s.io", "k8sdm.io")
# The largest quantities accepted (a cluster refuses far less; these only keep nonsense out).
QUANTITY_BOUNDS = {"cpu": (Decimal(1024), "1024 (cores)"), "memory": (Decimal(64 * 2**40), "64Ti")}
PROTOCOLS = ("TCP", "UDP", "SCTP")
RESOURCE_NAMES = ("cpu", "memory")

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
C_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
IANA_SVC_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:@+-]{1,128}$")
# Kubernetes resource.Quantity: a non-negative number with an SI / binary suffix or an exponent.
QUANTITY = re.compile(r"^(?:\d+(?:\.\d*)?|\.\d+)(?:Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?\d+)?$", re.ASCII)

# The distribution/reference grammar (what `docker pull` accepts).
_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
IMAGE_REFERENCE = re.compile(
    rf"^(?:(?P<domain>{_DOMAIN})/)?(?P<path>{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*)"
    rf"(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?$",
    re.ASCII,  # \w and \d: ASCII only, as in the reference grammar
)

def validate_identifier(value: str) -> str:
    if len(value) > IDENTIFIER_MAX:
        raise ValidationError(f"must be at most {IDENTIFIER_MAX} characters")
    if not DNS1123_LABEL.fullmatch(value):
        raise ValidationError(
            "must be a DNS-1123 label: lowercase letters, digits and '-', starting and ending with a letter or digit"
        )
    return value


def validate_namespace(value: str) -> str:
    if value in FORBIDDEN_NAMESPACES:
        raise ValidationError(f"namespace {value!r} is reserved for the cluster and can never be used")
    if len(value) > IDENTIFIER_MAX or not DNS1123_LABEL.fullmatch(value):
        raise ValidationError("must be a DNS-1123 label (lowercase letters, digits and '-', at most 63)")
    allowed = settings.K8SDM_ALLOWED_NAMESPACES
    if value not in allowed:
        raise ValidationError(f"namespace {value!r} is not allowed; allowed: {', '.join(sorted(allowed))}")
    return value


def image_registry(reference: str) -> str:
    """The registry host of an image reference; Docker Hub when none is named (`nginx:1.27`)."""
    first, sep, _ = reference.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost" or first.startswith("[")):
        return first.lower()
    return DOCKER_HUB


def validate_image(value: str) -> str:
    if len(value) > IMAGE_MAX:
        raise ValidationError(f"must be at most {IMAGE_MAX} characters")
    match = IMAGE_REFERENCE.fullmatch(value)
    if not match or len(match.group("path")) + len(match.group("domain") or "") > 255:
        raise ValidationError(
            "must be an OCI image reference: [registry[:port]/]repository[:tag][@algorithm:digest], "
            "repository in lowercase"
        )
    allowed = [r.lower() for r in settings.K8SDM_ALLOWED_REGISTRIES]
    if allowed:
        registry = image_registry(value)
        if registry not in allowed:
            raise ValidationError(
                f"registry {registry!r} is not allowed; allowed: {', '.join(sorted(allowed))}"
            )
    return value


def validate_replicas(value: int) -> int:
    if value < 0 or value > settings.K8SDM_MAX_REPLICAS:
        raise ValidationError(f"must be between 0 and {settings.K8SDM_MAX_REPLICAS}")
    return value


def reserved_key(key: str) -> bool:
    """Under kubernetes.io/, k8s.io/, k8sdm.io/ or any subdomain of them, in any case."""
    prefix = key.rpartition("/")[0].lower()
    return any(prefix == domain or prefix.endswith("." + domain) for domain in RESERVED_PREFIX_DOMAINS)


def _key_problem(key: str) -> str:
    """Why `key` is not a valid Kubernetes label/annotation key ('' when it is)."""
    if not key:
        return "keys must not be empty"
    if reserved_key(key):
        return (f"key {key!r} is reserved: prefixes kubernetes.io/, k8s.io/ (and their subdomains) and "
                "k8sdm.io/ belong to Kubernetes and k8s-deployment-manager")
    prefix, slash, name = key.rpartition("/")
    if slash and not prefix:
        return f"key {key!r}: the prefix before '/' must not be empty"
    if prefix and (len(prefix) > 253 or not DNS1123_SUBDOMAIN.fullmatch(prefix)):
        return f"key {key!r}: the prefix must be a DNS-1123 subdomain (lowercase, at most 253)"
    if len(name) > 63 or not QUALIFIED_NAME.fullmatch(name):
        return (
            f"key {key!r}: the name must be at most 63 characters of letters, digits, '-', '_' and '.', "
            "starting and ending with a letter or digit"
        )
    return ""


def validate_labels(value: dict) -> dict:
    if len(value) > MAX_LABELS:
        raise ValidationError(f"at most {MAX_LABELS} labels")
    errors: dict[str, list[str]] = {}
    for key, val in value.items():
        problem = _key_problem(key)
        if not problem and (len(val) > LABEL_VALUE_MAX or not LABEL_VALUE.fullmatch(val)):
            problem = (
                f"value of {key!r} must be at most {LABEL_VALUE_MAX} characters of letters, digits, '-', '_' "
                "and '.', starting and ending with a letter or digit (or empty)"
            )
        if problem:
            errors[key] = [problem]
    if errors:
        raise ValidationError(errors)
    return value


def validate_annotations(value: dict) -> dict:
    if len(value) > MAX_ANNOTATIONS:
        raise ValidationError(f"at most {MAX_ANNOTATIONS} annotations")
    errors: dict[str, list[str]] = {}
    for key, val in value.items():
        problem = _key_problem(key)
        if problem:
            errors[key] = [problem]
    if errors:
        raise ValidationError(errors)
    total = sum(len(k.encode()) + len(v.encode()) for k, v in value.items())
    if total > ANNOTATIONS_TOTAL_MAX:
        raise ValidationError(f"annotations must total at most {ANNOTATIONS_TOTAL_MAX} bytes (got {total})")
    return value


def validate_env_name(value: str) -> str:
    if not C_IDENTIFIER.fullmatch(value):
        raise ValidationError("must be a C identifier: letters, digits and '_', not starting with a digit")
    return value


def validate_port_name(value: str) -> str:
    """IANA_SVC_NAME: at most 15 lowercase letters, digits and '-', with at least one letter."""
    if value == "":
        return value
    if len(value) > 15 or not IANA_SVC_NAME.fullmatch(value) or "--" in value or not re.search("[a-z]", value):
        raise ValidationError(
            "must be an IANA service name: at most 15 lowercase letters, digits and single '-', "
            "with at least one letter, not starting or ending with '-'"
        )
    return value


def validate_quantity(value: str) -> str:
    if len(value) > QUANTITY_MAX or not QUANTITY.fullmatch(value):
        raise ValidationError("must be a Kubernetes quantity such as 100m, 0.5, 128Mi or 1G")
    return value


def _bounded(name: str):
    def validate(value: str) -> str:
        validate_quantity(value)
        bound, shown = QUANTITY_BOUNDS[name]
        try:
            too_big = parse_quantity(value) > bound
        except (ArithmeticError, KeyError):
            too_big = True
        if too_big:
            raise ValidationError(f"must be at most {shown}")
        return value

    return validate


validate_cpu = _bounded("cpu")
validate_memory = _bounded("memory")


def validate_resources(value: dict) -> dict:
    """{requests: {cpu, memory}, limits: {cpu, memory}}; each request at most its limit."""
    requests, limits = value.get("requests") or {}, value.get("limits") or {}
    errors: dict[str, list[str]] = {}
    for name in RESOURCE_NAMES:
        if name in requests and name in limits:
            try:
                too_big = parse_quantity(requests[name]) > parse_quantity(limits[name])
            except (InvalidOperation, KeyError):
                too_big = False
            if too_big:
                errors[f"requests.{name}"] = [
                    f"request {requests[name]} is greater than the limit {limits[name]}"
                ]
    if errors:
        raise ValidationError(errors)
    return value


def validate_request_id(value: str) -> str:
    if not REQUEST_ID.fullmatch(value):
        raise ValidationError("must be 1-128 characters of letters, digits and . _ : @ + -")
    return value

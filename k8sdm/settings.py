"""k8sdm settings: one module, every knob an environment variable (django-environ).

Local mode (K8SDM_ENV=local, the default) has safe defaults that match the local stack that
`make run` starts (devstack/). Production differs only by environment variables; see
docs/configuration.md. Any variable can also be given as a file: FOO_FILE=/run/secrets/foo.
Code reads django.conf.settings, never os.environ.
"""

from __future__ import annotations

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.FileAwareEnv()

K8SDM_ENV = env.str("K8SDM_ENV", default="local")
if K8SDM_ENV not in ("local", "test", "production"):
    raise ImproperlyConfigured(f"K8SDM_ENV must be local, test or production, not {K8SDM_ENV!r}")
LOCAL = K8SDM_ENV in ("local", "test")

# --- Django core -----------------------------------------------------------------------------

if LOCAL:
    SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="local-only-insecure-key-do-not-use-in-production")
else:
    SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="")
    if len(SECRET_KEY) < 50:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY (or DJANGO_SECRET_KEY_FILE) must be set to a random string of 50+ characters "
            "when K8SDM_ENV=production"
        )

DEBUG = env.bool("DJANGO_DEBUG", default=K8SDM_ENV == "local")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"] if LOCAL else [])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    # The operations console (k8sdm/ops/): its templates come before the admin's own.
    "k8sdm.ops.apps.OpsConfig",
    "k8sdm.ops.apps.OpsAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "axes",
    "rest_framework",
    "drf_spectacular",
    "users_app",
    "events_app",
    "deployments_app",
    "requests_app",
]

MIDDLEWARE = [
    # First: the API's correlation id, body size limit, JSON error shape and HTTP metrics (k8sdm/api/).
    "k8sdm.api.middleware.ApiMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes requires: refuses a locked-out admin login.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "k8sdm.urls"
WSGI_APPLICATION = "k8sdm.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": env.db_url("DATABASE_URL", default="postgres://postgres@127.0.0.1:55432/k8sdm"),
}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DATABASES["default"].setdefault("OPTIONS", {})
DATABASES["default"]["OPTIONS"].setdefault("connect_timeout", env.int("DATABASE_CONNECT_TIMEOUT", default=5))
# Parameters sent apart from the query (psycopg's server-side binding) instead of quoted into it
# in Python, and a statement run DATABASE_PREPARE_THRESHOLD times on a connection prepared on the
# server (parsed and planned once). Both off behind a pooler in transaction mode (PgBouncer
# without max_prepared_statements): set DATABASE_PREPARE_THRESHOLD= (empty) there.
DATABASES["default"]["OPTIONS"].setdefault("server_side_binding",
                                           env.bool("DATABASE_SERVER_SIDE_BINDING", default=True))
_prepare = env.str("DATABASE_PREPARE_THRESHOLD", default="5")
DATABASES["default"]["OPTIONS"].setdefault("prepare_threshold", int(_prepare) if _prepare.strip() else None)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Operations console (the admin, k8sdm/ops/) --------------------------------------------------

# Dates with seconds everywhere the admin shows one.
FORMAT_MODULE_PATH = ["k8sdm.ops.formats"]
# The dashboard flags requests still pending after this long.
K8SDM_ADMIN_PENDING_ALERT_SECONDS = env.float("K8SDM_ADMIN_PENDING_ALERT_SECONDS", default=60.0)
# Admin login throttle (django-axes): after this many failed logins for one username from one
# client address, that pair is refused until the cool-off has passed (or `manage.py axes_reset`).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_ENABLED = env.bool("K8SDM_ADMIN_LOGIN_THROTTLE", default=True)
AXES_FAILURE_LIMIT = env.int("K8SDM_ADMIN_LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = env.float("K8SDM_ADMIN_LOGIN_COOLOFF_MINUTES", default=15.0) / 60.0  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_ONLY_ADMIN_SITE = True
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "admin/ops/locked_out.html"
AXES_VERBOSE = False

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env.path("DJANGO_STATIC_ROOT", default=str(BASE_DIR / "staticfiles"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if LOCAL
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = LOCAL

# --- Security (production) -------------------------------------------------------------------

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=not LOCAL)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
SESSION_COOKIE_SECURE = env.bool("DJANGO_SESSION_COOKIE_SECURE", default=not LOCAL)
CSRF_COOKIE_SECURE = env.bool("DJANGO_CSRF_COOKIE_SECURE", default=not LOCAL)
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=0 if LOCAL else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not LOCAL
SECURE_HSTS_PRELOAD = not LOCAL
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# --- Logging ---------------------------------------------------------------------------------

LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOG_FORMAT = env.str("LOG_FORMAT", default="text" if LOCAL else "json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "text": {"()": "k8sdm.logging.TextFormatter", "format": "%(asctime)s %(levelname)-7s %(name)s: %(message)s"},
        "json": {"()": "k8sdm.logging.JsonFormatter"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        "kubernetes": {"level": "WARNING"},
        "urllib3": {"level": "WARNING"},
        "nats": {"level": "WARNING"},
    },
}

# --- REST API ----------------------------------------------------------------------------------

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["k8sdm.api.parsers.StrictJSONParser"],
    "DEFAULT_AUTHENTICATION_CLASSES": ["k8sdm.api.authentication.ApiAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_THROTTLE_CLASSES": ["k8sdm.api.throttling.UserRateThrottle", "k8sdm.api.throttling.AddressRateThrottle"],
    "EXCEPTION_HANDLER": "k8sdm.api.errors.exception_handler",
    "UNAUTHENTICATED_USER": None,
    "UNAUTHENTICATED_TOKEN": None,
}

# Swagger UI / Redoc assets shipped as a pip package (the docs page must work without internet).
INSTALLED_APPS += ["drf_spectacular_sidecar"]

SPECTACULAR_SETTINGS = {
    "TITLE": "k8sdm API",
    "DESCRIPTION": "Self-service Kubernetes deployments: ask for a Deployment to be created, updated or deleted; "
    "follow the request; see what really runs.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "RequestStatusEnum": "requests_app.models.RequestStatus",
        "RequestActionEnum": "requests_app.models.RequestAction",
        "DeploymentStatusEnum": "deployments_app.models.DeploymentStatus",
        "DeploymentHealthEnum": "deployments_app.models.DeploymentHealth",
    },
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    # Swagger UI and Redoc served from drf-spectacular-sidecar's static files (no CDN needed).
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    # No online validator badge (an image from validator.swagger.io): the docs work offline.
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
    "REDOC_DIST": "SIDECAR",
    "TAGS": [
        {"name": "deployment requests", "description": "Ask for a Deployment to be created, changed or deleted."},
        {"name": "requests", "description": "Follow your requests."},
        {"name": "deployments", "description": "What runs: your deployments as observed in the cluster."},
        {"name": "tokens", "description": "Your personal API tokens (Authorization: Bearer k8sdm_...)."},
        {"name": "events", "description": "Follow your requests and deployments as they change (Server-Sent "
         "Events; GET /api/v1/requests/{request_id}?wait=N is the long-poll)."},
        {"name": "webhooks", "description": "Be told of your events: signed HTTP callbacks and their deliveries."},
    ],
}

# --- Authentication (docs/security.md) ---------------------------------------------------------

# Tried in order: header (a trusted gateway's X-User-Id), jwt (a verified bearer JWT), token
# (a personal API token k8sdm_...).
K8SDM_AUTH_MODES = [m.strip().lower() for m in env.list("K8SDM_AUTH_MODES", default=["header"]) if m.strip()]
_unknown_modes = set(K8SDM_AUTH_MODES) - {"header", "jwt", "token"}
if _unknown_modes or not K8SDM_AUTH_MODES:
    raise ImproperlyConfigured(
        f"K8SDM_AUTH_MODES must be a comma-separated list of header, jwt, token; got {K8SDM_AUTH_MODES!r}"
    )
# header mode: the header with the caller's id, set by the gateway (which strips the client's copy).
K8SDM_USER_HEADER = env.str("K8SDM_USER_HEADER", default="X-User-Id")
# header mode trusts the header only from these peers (CIDRs) and/or with this shared secret.
K8SDM_TRUSTED_PROXIES = env.list(
    "K8SDM_TRUSTED_PROXIES", default=["127.0.0.0/8", "::1/128"] if LOCAL else []
)
K8SDM_GATEWAY_SECRET = env.str("K8SDM_GATEWAY_SECRET", default="")
K8SDM_GATEWAY_SECRET_HEADER = env.str("K8SDM_GATEWAY_SECRET_HEADER", default="X-Gateway-Secret")
# jwt mode
K8SDM_JWT_JWKS_URL = env.str("K8SDM_JWT_JWKS_URL", default="")
K8SDM_JWT_PUBLIC_KEY_FILE = env.str("K8SDM_JWT_PUBLIC_KEY_FILE", default="")
K8SDM_JWT_ISSUER = env.str("K8SDM_JWT_ISSUER", default="")
K8SDM_JWT_AUDIENCE = env.str("K8SDM_JWT_AUDIENCE", default="")
K8SDM_JWT_ALGORITHMS = env.list("K8SDM_JWT_ALGORITHMS", default=["RS256", "ES256"])
_bad_algorithms = [a for a in K8SDM_JWT_ALGORITHMS if a.lower() == "none" or a.upper().startswith("HS")]
if _bad_algorithms or not K8SDM_JWT_ALGORITHMS:
    raise ImproperlyConfigured(
        f"K8SDM_JWT_ALGORITHMS must list asymmetric algorithms (RS*, PS*, ES*, EdDSA), not {_bad_algorithms!r}"
    )
K8SDM_JWT_USER_CLAIM = env.str("K8SDM_JWT_USER_CLAIM", default="sub")
K8SDM_JWT_LEEWAY_SECONDS = env.int("K8SDM_JWT_LEEWAY_SECONDS", default=30)
# The JWKS is kept this long, and refetched at most once per K8SDM_JWT_JWKS_MIN_REFETCH_SECONDS
# when a token names a key id it does not have (key rotation).
K8SDM_JWT_JWKS_CACHE_SECONDS = env.int("K8SDM_JWT_JWKS_CACHE_SECONDS", default=300)
K8SDM_JWT_JWKS_MIN_REFETCH_SECONDS = env.float("K8SDM_JWT_JWKS_MIN_REFETCH_SECONDS", default=30.0)
K8SDM_JWT_JWKS_TIMEOUT_SECONDS = env.float("K8SDM_JWT_JWKS_TIMEOUT_SECONDS", default=5.0)
# token mode: last_used_at is written at most once per this many seconds per token.
K8SDM_TOKEN_TOUCH_SECONDS = env.int("K8SDM_TOKEN_TOUCH_SECONDS", default=60)
K8SDM_TOKEN_MAX_PER_USER = env.int("K8SDM_TOKEN_MAX_PER_USER", default=20)
K8SDM_TOKEN_MAX_DAYS = env.int("K8SDM_TOKEN_MAX_DAYS", default=365)

# --- Per-user policy and quotas (defaults; each user's policy in the admin overrides them) -----


def _limit(value: str) -> str:
    """A quota setting: a number or quantity, or "" / "unlimited" for none."""
    value = value.strip()
    return "" if value.lower() in ("", "unlimited", "none") else value


# Namespaces a user may use (a subset of K8SDM_ALLOWED_NAMESPACES; empty: all of those).
K8SDM_POLICY_NAMESPACES = env.list("K8SDM_POLICY_NAMESPACES", default=[])
# Registries a user may pull from: "host" (every repository there) or "host/prefix" (only under
# that path); empty: any registry K8SDM_ALLOWED_REGISTRIES allows.
K8SDM_POLICY_REGISTRIES = env.list("K8SDM_POLICY_REGISTRIES", default=[])
K8SDM_POLICY_MAX_DEPLOYMENTS = _limit(env.str("K8SDM_POLICY_MAX_DEPLOYMENTS", default="50"))
K8SDM_POLICY_MAX_REPLICAS = _limit(env.str("K8SDM_POLICY_MAX_REPLICAS", default="20"))
K8SDM_POLICY_MAX_REPLICAS_TOTAL = _limit(env.str("K8SDM_POLICY_MAX_REPLICAS_TOTAL", default="100"))
K8SDM_POLICY_MAX_CPU_PER_CONTAINER = _limit(env.str("K8SDM_POLICY_MAX_CPU_PER_CONTAINER", default="4"))
K8SDM_POLICY_MAX_MEMORY_PER_CONTAINER = _limit(env.str("K8SDM_POLICY_MAX_MEMORY_PER_CONTAINER", default="8Gi"))
K8SDM_POLICY_MAX_CPU_TOTAL = _limit(env.str("K8SDM_POLICY_MAX_CPU_TOTAL", default="64"))
K8SDM_POLICY_MAX_MEMORY_TOTAL = _limit(env.str("K8SDM_POLICY_MAX_MEMORY_TOTAL", default="128Gi"))

# --- Rate limits and the shared cache ----------------------------------------------------------

# The throttle counters live here: Redis or Valkey in production (redis://host:6379/0), so that
# every api process counts against the same limit; local memory (per process) by default.
CACHES = {"default": env.cache_url("CACHE_URL", default="locmemcache://")}
K8SDM_DEFAULT_NAMESPACE = env.str("K8SDM_DEFAULT_NAMESPACE", default="default")
K8SDM_ALLOWED_NAMESPACES = env.list("K8SDM_ALLOWED_NAMESPACES", default=["default"])
K8SDM_MAX_REPLICAS = env.int("K8SDM_MAX_REPLICAS", default=20)
# What a container gets when its request sets no `resources` at all (empty: leave that one unset).
K8SDM_DEFAULT_CPU_REQUEST = env.str("K8SDM_DEFAULT_CPU_REQUEST", default="100m")
K8SDM_DEFAULT_MEMORY_REQUEST = env.str("K8SDM_DEFAULT_MEMORY_REQUEST", default="128Mi")
K8SDM_DEFAULT_CPU_LIMIT = env.str("K8SDM_DEFAULT_CPU_LIMIT", default="1")
K8SDM_DEFAULT_MEMORY_LIMIT = env.str("K8SDM_DEFAULT_MEMORY_LIMIT", default="512Mi")
# The Kubernetes "restricted" Pod Security profile on every pod k8sdm creates (runAsNonRoot, all
# capabilities dropped): for clusters that enforce it. Images that run as root then fail to start.
K8SDM_POD_SECURITY_RESTRICTED = env.bool("K8SDM_POD_SECURITY_RESTRICTED", default=False)
# Empty: any registry. Otherwise image references must start with one of these hosts.
K8SDM_ALLOWED_REGISTRIES = env.list("K8SDM_ALLOWED_REGISTRIES", default=[])
K8SDM_MAX_BODY_BYTES = env.int("K8SDM_MAX_BODY_BYTES", default=64 * 1024)
K8SDM_RATE_LIMIT = env.str("K8SDM_RATE_LIMIT", default="600/min")
# Per source address (rotating user ids does not escape it) and for failed authentication.
K8SDM_RATE_LIMIT_PER_ADDRESS = env.str("K8SDM_RATE_LIMIT_PER_ADDRESS", default="1200/min")
K8SDM_AUTH_FAILURE_LIMIT = env.str("K8SDM_AUTH_FAILURE_LIMIT", default="60/min")
K8SDM_PAGE_SIZE = env.int("K8SDM_PAGE_SIZE", default=50)
K8SDM_MAX_PAGE_SIZE = env.int("K8SDM_MAX_PAGE_SIZE", default=200)
# Anything that reads request.body directly is held to the same limit as the API's 413 check.
DATA_UPLOAD_MAX_MEMORY_SIZE = K8SDM_MAX_BODY_BYTES
# Set (to an empty directory shared by the gunicorn workers) to aggregate /metrics over all workers.
K8SDM_PROMETHEUS_MULTIPROC_DIR = env.str("PROMETHEUS_MULTIPROC_DIR", default="")

# --- NATS JetStream ----------------------------------------------------------------------------

NATS_URL = env.str("NATS_URL", default="nats://127.0.0.1:54222")
K8SDM_NATS_CONNECT_TIMEOUT = env.float("K8SDM_NATS_CONNECT_TIMEOUT", default=2.0)
K8SDM_STREAM = env.str("K8SDM_STREAM", default="K8SDM")
K8SDM_SUBJECT_PREFIX = env.str("K8SDM_SUBJECT_PREFIX", default="k8sdm")
# Replicas of the stream in a JetStream cluster (1 for a single server; 3 for a 3-node cluster).
K8SDM_STREAM_REPLICAS = env.int("K8SDM_STREAM_REPLICAS", default=1)

# --- Worker ------------------------------------------------------------------------------------

K8SDM_WORKER_BATCH = env.int("K8SDM_WORKER_BATCH", default=16)
K8SDM_WORKER_CONCURRENCY = env.int("K8SDM_WORKER_CONCURRENCY", default=8)
K8SDM_ACK_WAIT_SECONDS = env.float("K8SDM_ACK_WAIT_SECONDS", default=60.0)
K8SDM_MAX_DELIVER = env.int("K8SDM_MAX_DELIVER", default=20)
K8SDM_APPLY_MAX_ATTEMPTS = env.int("K8SDM_APPLY_MAX_ATTEMPTS", default=6)
# 409 Conflict (stale resourceVersion) on an update: re-read and retry this many times.
K8SDM_CONFLICT_RETRIES = env.int("K8SDM_CONFLICT_RETRIES", default=10)
K8SDM_RETRY_BASE_SECONDS = env.float("K8SDM_RETRY_BASE_SECONDS", default=0.5)
K8SDM_RETRY_MAX_SECONDS = env.float("K8SDM_RETRY_MAX_SECONDS", default=30.0)
# Longest delay before a message the worker nak'ed (busy deployment, Postgres down, handler error)
# is delivered again: short, so work resumes within seconds of an outage's end.
K8SDM_NAK_MAX_SECONDS = env.float("K8SDM_NAK_MAX_SECONDS", default=5.0)
# Revisions kept per deployment (the newest; the request log keeps everything).
K8SDM_REVISION_HISTORY = env.int("K8SDM_REVISION_HISTORY", default=50)
# Rollout wait: how often the worker's timer looks at pending rollouts, and the longest wait allowed.
K8SDM_ROLLOUT_SCAN_SECONDS = env.float("K8SDM_ROLLOUT_SCAN_SECONDS", default=2.0)
K8SDM_ROLLOUT_MAX_TIMEOUT_SECONDS = env.int("K8SDM_ROLLOUT_MAX_TIMEOUT_SECONDS", default=3600)
K8SDM_OUTBOX_INTERVAL_SECONDS = env.float("K8SDM_OUTBOX_INTERVAL_SECONDS", default=1.0)
K8SDM_OUTBOX_GRACE_SECONDS = env.float("K8SDM_OUTBOX_GRACE_SECONDS", default=2.0)
# How long the stamper collects JetStream acks before one UPDATE stamps them all (<< the grace).
K8SDM_OUTBOX_STAMP_LINGER_SECONDS = env.float("K8SDM_OUTBOX_STAMP_LINGER_SECONDS", default=0.2)
# A request still pending this long after it was published (and not being attempted) is
# re-published: its message ran out of deliveries or was lost with the stream.
K8SDM_STALE_REQUEST_SECONDS = env.float("K8SDM_STALE_REQUEST_SECONDS", default=300.0)
K8SDM_WORKER_METRICS_PORT = env.int("K8SDM_WORKER_METRICS_PORT", default=9101)

# --- Kubernetes --------------------------------------------------------------------------------

# Empty: in-cluster config when running in a pod, else the default kubeconfig (~/.kube/config).
K8SDM_KUBECONFIG = env.str("K8SDM_KUBECONFIG", default="")
K8SDM_KUBE_CONTEXT = env.str("K8SDM_KUBE_CONTEXT", default="")
K8SDM_K8S_TIMEOUT_SECONDS = env.float("K8SDM_K8S_TIMEOUT_SECONDS", default=10.0)
# The api's live reads for a diagnosis or logs: short, so a slow API server is a quick 503.
K8SDM_DIAGNOSIS_TIMEOUT_SECONDS = env.float("K8SDM_DIAGNOSIS_TIMEOUT_SECONDS", default=3.0)
K8SDM_DIAGNOSIS_CACHE_SECONDS = env.float("K8SDM_DIAGNOSIS_CACHE_SECONDS", default=3.0)
K8SDM_LOGS_MAX_LINES = env.int("K8SDM_LOGS_MAX_LINES", default=1000)
K8SDM_LOGS_MAX_BYTES = env.int("K8SDM_LOGS_MAX_BYTES", default=256 * 1024)

# --- Watcher -----------------------------------------------------------------------------------

# Empty: the allowed namespaces. "*": every namespace.
K8SDM_WATCH_NAMESPACES = env.list("K8SDM_WATCH_NAMESPACES", default=[])
K8SDM_WATCH_TIMEOUT_SECONDS = env.int("K8SDM_WATCH_TIMEOUT_SECONDS", default=60)
K8SDM_RESYNC_SECONDS = env.float("K8SDM_RESYNC_SECONDS", default=300.0)
# How long a key waits in the watcher for more events of the same Deployment before it is published:
# a rollout's status steps arrive together, and each published key costs the worker a full sync.
K8SDM_SYNC_COALESCE_SECONDS = env.float("K8SDM_SYNC_COALESCE_SECONDS", default=0.05)
K8SDM_WATCHER_METRICS_PORT = env.int("K8SDM_WATCHER_METRICS_PORT", default=9102)

# --- Events, long-poll, SSE and webhooks (events_app) -------------------------------------------

# Off: no event is published (long-poll then re-reads the row every second).
K8SDM_EVENTS_ENABLED = env.bool("K8SDM_EVENTS_ENABLED", default=True)
# How long the events stream keeps events: the window for SSE Last-Event-ID resume.
K8SDM_EVENTS_RETENTION_SECONDS = env.int("K8SDM_EVENTS_RETENTION_SECONDS", default=86400)
# How long a process keeps retrying an event in memory while NATS is unreachable; after that the
# events outbox's relay (in runworker) publishes it from its row.
K8SDM_EVENTS_PUBLISH_RETRY_SECONDS = env.float("K8SDM_EVENTS_PUBLISH_RETRY_SECONDS", default=60.0)
# How long a published event's outbox row is kept before the relay deletes it.
K8SDM_EVENTS_OUTBOX_KEEP_SECONDS = env.int("K8SDM_EVENTS_OUTBOX_KEEP_SECONDS", default=3600)
# GET /api/v1/requests/{request_id}?wait=N: the largest N accepted.
K8SDM_LONG_POLL_MAX_SECONDS = env.int("K8SDM_LONG_POLL_MAX_SECONDS", default=60)
K8SDM_SSE_HEARTBEAT_SECONDS = env.float("K8SDM_SSE_HEARTBEAT_SECONDS", default=15.0)
# Open SSE streams per user and in all, per ASGI process.
K8SDM_SSE_MAX_STREAMS_PER_USER = env.int("K8SDM_SSE_MAX_STREAMS_PER_USER", default=5)
K8SDM_SSE_MAX_STREAMS = env.int("K8SDM_SSE_MAX_STREAMS", default=5000)
# Events a stream may fall behind before it is ended (the client resumes with Last-Event-ID).
K8SDM_SSE_QUEUE_SIZE = env.int("K8SDM_SSE_QUEUE_SIZE", default=1000)
# Most events one Last-Event-ID reconnect replays.
K8SDM_SSE_REPLAY_LIMIT = env.int("K8SDM_SSE_REPLAY_LIMIT", default=10000)
K8SDM_SSE_CONSUMER_CHECK_SECONDS = env.float("K8SDM_SSE_CONSUMER_CHECK_SECONDS", default=2.0)
K8SDM_WEBHOOK_TIMEOUT_SECONDS = env.float("K8SDM_WEBHOOK_TIMEOUT_SECONDS", default=5.0)
K8SDM_WEBHOOK_MAX_ATTEMPTS = env.int("K8SDM_WEBHOOK_MAX_ATTEMPTS", default=6)
K8SDM_WEBHOOK_RETRY_BASE_SECONDS = env.float("K8SDM_WEBHOOK_RETRY_BASE_SECONDS", default=10.0)
K8SDM_WEBHOOK_RETRY_MAX_SECONDS = env.float("K8SDM_WEBHOOK_RETRY_MAX_SECONDS", default=3600.0)
# An endpoint whose deliveries have all failed for this long (and at least DISABLE_AFTER_FAILURES
# of them) is disabled; its owner sees why in the API and can enable it again.
K8SDM_WEBHOOK_DISABLE_AFTER_SECONDS = env.float("K8SDM_WEBHOOK_DISABLE_AFTER_SECONDS", default=86400.0)
K8SDM_WEBHOOK_DISABLE_AFTER_FAILURES = env.int("K8SDM_WEBHOOK_DISABLE_AFTER_FAILURES", default=5)
K8SDM_WEBHOOK_MAX_PER_USER = env.int("K8SDM_WEBHOOK_MAX_PER_USER", default=10)
# Webhooks never reach loopback, link-local, private, shared or reserved addresses, nor these
# (the cluster's pod and service ranges when they are public) ...
K8SDM_WEBHOOK_DENIED_NETWORKS = env.list("K8SDM_WEBHOOK_DENIED_NETWORKS", default=[])
# ... unless an address is inside one of these (e.g. 10.20.0.0/16 for an internal CI server).
K8SDM_WEBHOOK_ALLOWED_NETWORKS = env.list("K8SDM_WEBHOOK_ALLOWED_NETWORKS", default=[])
K8SDM_NOTIFIER_CONCURRENCY = env.int("K8SDM_NOTIFIER_CONCURRENCY", default=16)
K8SDM_NOTIFIER_METRICS_PORT = env.int("K8SDM_NOTIFIER_METRICS_PORT", default=9103)

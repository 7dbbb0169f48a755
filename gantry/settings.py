"""Gantry settings, read from the environment (12-factor).

Development and tests run with the defaults (``DEBUG`` on). Production is ``DEBUG=0`` with
``SECRET_KEY`` and ``ALLOWED_HOSTS`` set: TLS-only cookies, HSTS, a redirect to HTTPS behind a
proxy that sets ``X-Forwarded-Proto``, static files from WhiteNoise, JSON log lines
(``.env.example`` lists every variable; ``manage.py check --deploy`` passes).
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from gantry.logging import logging_config

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", True)
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off")
    # Development only: a fixed, obviously-insecure key so sessions survive restarts.
    SECRET_KEY = "django-insecure-gantry-development-key-do-not-use-in-production"  # noqa: S105

# Production names its hosts; nothing is allowed by default there (check --deploy says so).
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "teams",
    "designer",
    "deployer",
    "audit",
    "pages",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "api",
]

MIDDLEWARE = [
    "gantry.request_context.RequestContextMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # /healthz and /readyz, answered before the host check and the session: a load balancer
    # probes by IP address over plain HTTP (SECURE_REDIRECT_EXEMPT lets it through above).
    "gantry.health.HealthProbeMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last: Gantry's own 404 and 500 pages, also with DEBUG on (pages/errors.py).
    "pages.errors.ErrorPageMiddleware",
]

ROOT_URLCONF = "gantry.urls"
ASGI_APPLICATION = "gantry.asgi.application"
WSGI_APPLICATION = "gantry.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
            # Formatting for people (durations, money, local times) in every app's templates.
            "libraries": {"human": "gantry.human"},
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        conn_max_age=int(os.environ.get("DATABASE_CONN_MAX_AGE", "0")),
        # A persistent connection the database dropped (restart, failover) is replaced, not used.
        conn_health_checks=True,
    )
}
#: A web process's connections come from a pool of at most this many (0: no pool, a connection
#: per request in flight). Under ASGI every request and every live stream's brief read runs in
#: a thread of its own, so a burst of requests would otherwise open as many connections as it
#: has requests; with a pool they wait (up to 30 s) for one of GANTRY_DB_POOL_SIZE instead of
#: failing on max_connections. PostgreSQL only, and only without persistent connections
#: (DATABASE_CONN_MAX_AGE=0, as the web runs): the workers keep theirs.
GANTRY_DB_POOL_SIZE = int(os.environ.get("GANTRY_DB_POOL_SIZE", "0"))
if GANTRY_DB_POOL_SIZE and DATABASES["default"]["ENGINE"].endswith("postgresql"):
    if DATABASES["default"]["CONN_MAX_AGE"]:
        raise ImproperlyConfigured("GANTRY_DB_POOL_SIZE needs DATABASE_CONN_MAX_AGE=0")
    DATABASES["default"]["OPTIONS"] = {
        **DATABASES["default"].get("OPTIONS", {}),
        "pool": {"min_size": 1, "max_size": GANTRY_DB_POOL_SIZE, "timeout": 30},
    }
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # SQLite is one file with one writer at a time. What makes it hold a handful of concurrent
    # deployments on one machine (the web, the worker's processes and the CLI writing at once):
    # - WAL: readers never block the writer nor it them;
    # - IMMEDIATE transactions: a transaction takes the write lock when it begins, so two never
    #   deadlock upgrading from read to write (which SQLite answers with an immediate
    #   "database is locked", whatever the timeout);
    # - a busy timeout: a writer waits its turn instead of failing. The reconciler holds no
    #   transaction while AWS works, so nobody waits long.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": float(os.environ.get("SQLITE_BUSY_TIMEOUT", "30")),
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # A file, not memory, so that worker processes started by the tests share the test database.
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / "test-db.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": os.environ.get("CACHE_KEY_PREFIX", "gantry"),
        "TIMEOUT": 24 * 3600,
    }
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Django's password check behind the failed-authentication guard (gantry/auth_guard.py).
AUTHENTICATION_BACKENDS = ["gantry.auth_guard.GuardedModelBackend"]
#: Failed authentications (tokens and passwords) one client address may make in a window of
#: GANTRY_AUTH_FAILURE_WINDOW seconds before every attempt from it is a 429; the audit trail
#: records such failures once per window and source, with a summary count when it closes.
GANTRY_AUTH_FAILURES_PER_ADDRESS = int(os.environ.get("GANTRY_AUTH_FAILURES_PER_ADDRESS", "20"))
GANTRY_AUTH_FAILURE_WINDOW = int(os.environ.get("GANTRY_AUTH_FAILURE_WINDOW", "300"))
#: Wrong passwords for one username, from anywhere, that lock it for GANTRY_LOGIN_LOCKOUT_SECONDS.
GANTRY_LOGIN_FAILURES_PER_USERNAME = int(os.environ.get("GANTRY_LOGIN_FAILURES_PER_USERNAME", "10"))
GANTRY_LOGIN_LOCKOUT_SECONDS = int(os.environ.get("GANTRY_LOGIN_LOCKOUT_SECONDS", "900"))

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "designer:design_list"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", BASE_DIR / "staticfiles"))
STATICFILES_DIRS = [BASE_DIR / "static"]
# Static files are served by WhiteNoise under uvicorn too; in development straight from the
# source folders so edits show without collectstatic.
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}


# A spec is a few hundred bytes; anything near this limit is not a spec.
DATA_UPLOAD_MAX_MEMORY_SIZE = 256 * 1024

CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", REDIS_URL)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("GANTRY_QUEUE", "gantry")
# Redis redelivers a message not acked within this time; it must exceed any countdown the
# reconciler uses (at most GANTRY_POLL_MAX / backoff cap of 60 s), or ETA tasks would be
# delivered twice. A worker killed mid-pass is covered sooner by the reaper.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 600}
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Workers and beat log through LOGGING below (JSON lines in production), not Celery's own.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
#: How often every live deployment's resources are compared with what was applied (seconds;
#: 0 turns the periodic check off; "Check drift now" still works).
GANTRY_DRIFT_INTERVAL = float(os.environ.get("GANTRY_DRIFT_INTERVAL", "3600"))
CELERY_BEAT_SCHEDULE = {
    "reap-stalled-deployments": {
        "task": "deployer.tasks.reap",
        "schedule": float(os.environ.get("GANTRY_REAP_INTERVAL", "30")),
    },
    # The summary entry of each closed window of failed authentications (audit/services.py).
    "close-audit-failure-windows": {"task": "audit.tasks.close_failure_windows", "schedule": 60.0},
    **(
        {
            "check-drift": {
                "task": "deployer.tasks.check_drift_everywhere",
                # Often enough that a deployment is checked within about its interval.
                "schedule": max(30.0, min(GANTRY_DRIFT_INTERVAL / 4, 900.0)),
            }
        }
        if GANTRY_DRIFT_INTERVAL > 0
        else {}
    ),
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # First, so an anonymous call is answered 401 with WWW-Authenticate: Token.
        "api.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": ["api.parsers.LimitedJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "api.pagination.Pagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "api.errors.exception_handler",
    "DEFAULT_THROTTLE_CLASSES": ["rest_framework.throttling.UserRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "user": os.environ.get("GANTRY_API_RATE", "1200/min"),
        # Starting and destroying deployments cost AWS calls and money: per user.
        "deploy": os.environ.get("GANTRY_API_DEPLOY_RATE", "30/min"),
        "destroy": os.environ.get("GANTRY_API_DESTROY_RATE", "30/min"),
    },
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    "UNICODE_JSON": True,
}
#: The largest request body the API accepts (a spec is a few hundred bytes).
GANTRY_API_MAX_BODY = int(os.environ.get("GANTRY_API_MAX_BODY", str(64 * 1024)))
#: Live event streams one user may hold open at once (page tabs and API clients together).
GANTRY_STREAMS_PER_USER = int(os.environ.get("GANTRY_STREAMS_PER_USER", "10"))
#: How often an open stream re-checks that its user may still watch (and catches events
#: whose push was lost), in seconds: a revoked token's stream ends within this time.
GANTRY_STREAM_RECHECK_SECONDS = float(os.environ.get("GANTRY_STREAM_RECHECK_SECONDS", "5"))
#: The longest a stream stays open, seconds; then the client reconnects from its last event.
GANTRY_STREAM_MAX_SECONDS = float(os.environ.get("GANTRY_STREAM_MAX_SECONDS", "3600"))

SPECTACULAR_SETTINGS = {
    "TITLE": "Gantry API",
    "DESCRIPTION": (
        "Design, deploy and destroy the 'Lambda calls a private API in a VPC' pattern. Every "
        "object belongs to a team: another team's object answers 404. Errors are JSON with a "
        "`message`, and field-level `errors` where input was wrong."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "api.schema.add_error_responses",
    ],
    "ENUM_NAME_OVERRIDES": {
        "DeploymentStatusEnum": "deployer.models.Deployment.Status",
        "ResourceStateEnum": "deployer.models.ResourceRecord.State",
    },
}

#: How many reverse proxies in front of Gantry append to X-Forwarded-For (0: trust none, use
#: the socket's address). Audit entries record the client address this gives.
TRUSTED_PROXY_COUNT = int(os.environ.get("TRUSTED_PROXY_COUNT", "0"))

#: The sandbox target's AWS endpoint (the emulator behind the sandbox proxy).
GANTRY_SANDBOX_ENDPOINT = os.environ.get("GANTRY_SANDBOX_ENDPOINT", "")
#: Reconciler tuning (seconds).
GANTRY_POLL_MIN = float(os.environ.get("GANTRY_POLL_MIN", "0.5"))
GANTRY_POLL_MAX = float(os.environ.get("GANTRY_POLL_MAX", "10"))
#: A pending resource is looked at again after 1/N of the time it has waited so far.
GANTRY_POLL_FRACTION = float(os.environ.get("GANTRY_POLL_FRACTION", "10"))
GANTRY_PASS_BUDGET = float(os.environ.get("GANTRY_PASS_BUDGET", "1"))
#: A worker slot runs the pass it was given and, beside it in threads, those of up to N - 1
#: other deployments due at that moment: a pass mostly waits for AWS's answers.
GANTRY_PASS_BATCH = int(os.environ.get("GANTRY_PASS_BATCH", "16"))
#: Threads per worker process for the AWS calls of the passes it runs.
GANTRY_AWS_THREADS = int(os.environ.get("GANTRY_AWS_THREADS", "32"))
#: How long a pass holds its deployment without renewing (it renews while AWS calls are in
#: flight); a worker killed mid-pass delays its deployment by at most this.
GANTRY_PASS_LEASE = float(os.environ.get("GANTRY_PASS_LEASE", "10"))
GANTRY_MAX_RETRIES = int(os.environ.get("GANTRY_MAX_RETRIES", "12"))
GANTRY_DELETE_PATIENCE = float(os.environ.get("GANTRY_DELETE_PATIENCE", "7200"))
GANTRY_REAP_AFTER = float(os.environ.get("GANTRY_REAP_AFTER", "60"))

#: The local AWS emulator (moto server) in development; unset in production.
AWS_ENDPOINT_URL = os.environ.get("AWS_ENDPOINT_URL", "")

#: ``json``: one JSON object per line with the request and deployment ids (gantry/logging.py),
#: the default when DEBUG is off; ``text`` for reading in a terminal, the default in development.
LOG_FORMAT = os.environ.get("LOG_FORMAT", "text" if DEBUG else "json").strip().lower()
if LOG_FORMAT not in {"json", "text"}:
    raise ImproperlyConfigured(f"LOG_FORMAT must be json or text, not {LOG_FORMAT!r}")
LOGGING = logging_config(
    json_lines=LOG_FORMAT == "json", level=os.environ.get("LOG_LEVEL", "INFO").upper()
)

if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    # Load-balancer probes speak plain HTTP to the container (paths without the leading slash).
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
    # Only a local benchmark over plain HTTP turns these off (SECURE_COOKIES=0).
    SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env_bool("SECURE_COOKIES", True)
    SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", str(365 * 24 * 3600)))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_CONTENT_TYPE_NOSNIFF = True
    X_FRAME_OPTIONS = "DENY"

"""Hub settings: everything comes from the environment (12-factor); see README for the list."""

from __future__ import annotations

import secrets
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from hub.env import (
    database_from_url,
    env_bool,
    env_choice,
    env_int,
    env_list,
    env_str,
    shared_secret,
)

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(env_str("HUB_DATA_DIR", str(Path.cwd() / "var"))).resolve()


def _ensure_data_dir() -> None:
    try:
        DATA_DIR.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ImproperlyConfigured(
            f"HUB_DATA_DIR: cannot create {str(DATA_DIR)!r}: {exc.strerror}"
        ) from exc


def _secret_key() -> str:
    configured = env_str("HUB_SECRET_KEY")
    if configured:
        return configured
    # The embedded default keeps a generated key in the data folder so that
    # several processes (and restarts) agree on it.
    path = DATA_DIR / "secret_key"
    if not path.exists():
        _ensure_data_dir()
    return shared_secret(path, lambda: secrets.token_urlsafe(50))


DEBUG = env_bool("HUB_DEBUG", False)
SECRET_KEY = _secret_key()
ALLOWED_HOSTS = env_list("HUB_ALLOWED_HOSTS", "*")

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "allauth",
    "allauth.account",
    "allauth.socialaccount",
    "allauth.socialaccount.providers.openid_connect",
    "allauth.mfa",
    "rest_framework",
    "drf_spectacular",
    "hub",
    "registry",
    "teams",
    "accounts",
    "audit",
    "web",
]

# Forms whose token expired answer in Hub's look, saying what to do.
CSRF_FAILURE_VIEW = "web.views.errors.csrf_failure"

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Static files for the web UI (hub/wsgi.py keeps it off the /v2/ chain).
    "web.static.StaticFilesMiddleware",
    "audit.context.AuditContextMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "allauth.account.middleware.AccountMiddleware",
]

AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]

ROOT_URLCONF = "hub.urls"
WSGI_APPLICATION = "hub.wsgi.application"
APPEND_SLASH = False

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
                "web.context.site",
            ],
        },
    },
]

_database_url = env_str("DATABASE_URL")
if _database_url:
    DATABASES = {"default": database_from_url(_database_url)}
else:
    _ensure_data_dir()
    DATABASES = {
        "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": DATA_DIR / "hub.sqlite3"}
    }

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets readers run beside the one writer; IMMEDIATE takes the write lock
    # at BEGIN so two writers queue on the busy timeout instead of failing with
    # "database is locked" when one upgrades a read lock.
    # Opening SQLite and running the PRAGMAs cost more than a manifest GET: keep connections.
    DATABASES["default"]["CONN_MAX_AGE"] = 600
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
        "init_command": (
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=30000;"
        ),
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# The container image collects static files at build time, outside the data volume.
STATIC_ROOT = Path(env_str("HUB_STATIC_ROOT", str(DATA_DIR / "static"))).resolve()
STATICFILES_DIRS = [BASE_DIR / "static"] if (BASE_DIR / "static").is_dir() else []
# Collected static files (`hub collectstatic`, as the image does) and, without them, the
# finders' are served by Hub itself (web.static), so one image needs no web server beside it.

# --- Web UI (web/) --------------------------------------------------------------------------

# whitenoise serves static files straight from the finders: no `collectstatic` step.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG
# Tags per page on a repository page.
HUB_WEB_PAGE_SIZE = env_int("HUB_WEB_PAGE_SIZE", 50, minimum=1)

# --- Registry -------------------------------------------------------------------------------

HUB_STORAGE = env_choice("HUB_STORAGE", ("filesystem", "s3"), "filesystem")
HUB_STORAGE_DIR = DATA_DIR / "storage"
HUB_S3 = {
    "endpoint_url": env_str("HUB_S3_ENDPOINT_URL") or None,
    "bucket": env_str("HUB_S3_BUCKET"),
    "region": env_str("HUB_S3_REGION", "us-east-1"),
    "access_key_id": env_str("HUB_S3_ACCESS_KEY_ID") or None,
    "secret_access_key": env_str("HUB_S3_SECRET_ACCESS_KEY") or None,
    "prefix": env_str("HUB_S3_PREFIX").strip("/"),
    "redirect": env_bool("HUB_S3_REDIRECT", False),
    "redirect_ttl": env_int("HUB_S3_REDIRECT_TTL", 600, minimum=10),
    "part_size": env_int("HUB_S3_PART_SIZE", 8 * 1024 * 1024, minimum=5 * 1024 * 1024),
}
if HUB_STORAGE == "s3" and not HUB_S3["bucket"]:
    raise ImproperlyConfigured("HUB_S3_BUCKET must be set when HUB_STORAGE=s3")

# An upload session that sees no request for this long is gone (BLOB_UPLOAD_UNKNOWN).
HUB_UPLOAD_IDLE_TIMEOUT = env_int("HUB_UPLOAD_IDLE_TIMEOUT", 24 * 3600, minimum=1)
# Open upload sessions one repository may hold; beyond it POST answers TOO_MANY_REQUESTS.
HUB_UPLOADS_PER_REPOSITORY = env_int("HUB_UPLOADS_PER_REPOSITORY", 1000, minimum=1)
# Largest page tags/list, _catalog and referrers answer, whatever `n` asks for.
HUB_PAGE_SIZE_MAX = env_int("HUB_PAGE_SIZE_MAX", 1000, minimum=1)
HUB_MANIFEST_MAX_BYTES = env_int("HUB_MANIFEST_MAX_BYTES", 4 * 1024 * 1024, minimum=1024)
# fsync finished blobs before they become visible (filesystem backend).
HUB_FSYNC = env_bool("HUB_FSYNC", True)
# Garbage collection: a blob nothing has touched (uploaded, mounted, referenced, pulled)
# for this long and no manifest references is removed; so is an upload session idle
# for HUB_UPLOAD_IDLE_TIMEOUT. Intervals are seconds between scheduled runs (0: never).
HUB_GC_GRACE_SECONDS = env_int("HUB_GC_GRACE_SECONDS", 24 * 3600, minimum=0)
HUB_GC_INTERVAL = env_int("HUB_GC_INTERVAL", 3600, minimum=0)
HUB_UPLOAD_CLEANUP_INTERVAL = env_int("HUB_UPLOAD_CLEANUP_INTERVAL", 900, minimum=0)
HUB_RETENTION_INTERVAL = env_int("HUB_RETENTION_INTERVAL", 24 * 3600, minimum=0)

# --- Webhooks -------------------------------------------------------------------------------

# Targets on loopback, link-local and private networks are refused unless this is set.
HUB_WEBHOOK_ALLOW_PRIVATE = env_bool("HUB_WEBHOOK_ALLOW_PRIVATE", False)
HUB_WEBHOOK_TIMEOUT = env_int("HUB_WEBHOOK_TIMEOUT", 10, minimum=1)
HUB_WEBHOOK_MAX_ATTEMPTS = env_int("HUB_WEBHOOK_MAX_ATTEMPTS", 10, minimum=1)
# Seconds before the first retry; each further one waits twice as long (at most an hour).
HUB_WEBHOOK_RETRY_BASE = env_int("HUB_WEBHOOK_RETRY_BASE", 30, minimum=1)
# A hook whose deliveries have all failed for this long is switched off.
HUB_WEBHOOK_DISABLE_AFTER = env_int("HUB_WEBHOOK_DISABLE_AFTER", 24 * 3600, minimum=60)
# How often due deliveries (retries; all of them without Redis) are swept up and sent.
HUB_WEBHOOK_SWEEP_INTERVAL = env_int("HUB_WEBHOOK_SWEEP_INTERVAL", 10, minimum=0)

# --- Accounts and tokens --------------------------------------------------------------------

# The docker token service: issuer and audience of registry bearer tokens.
HUB_TOKEN_ISSUER = env_str("HUB_TOKEN_ISSUER", "hub")
HUB_TOKEN_SERVICE = env_str("HUB_TOKEN_SERVICE", "hub")
HUB_TOKEN_TTL = env_int("HUB_TOKEN_TTL", 300, minimum=30)
# PEM of an EC P-256 private key; by default one is made in the data folder on first start.
HUB_TOKEN_PRIVATE_KEY = env_str("HUB_TOKEN_PRIVATE_KEY")
# The address clients reach Hub at (for the token realm); by default the request's host.
HUB_PUBLIC_URL = env_str("HUB_PUBLIC_URL").rstrip("/")
# A verified password is remembered this long (per process), so Basic credentials on
# every request do not pay for a slow password hash each time.
HUB_AUTH_CACHE_SECONDS = env_int("HUB_AUTH_CACHE_SECONDS", 60, minimum=0)
# Failed sign-ins and token requests allowed per account / per address in the window.
HUB_AUTH_FAILURE_WINDOW = env_int("HUB_AUTH_FAILURE_WINDOW", 300, minimum=1)
HUB_AUTH_MAX_FAILURES_PER_ACCOUNT = env_int("HUB_AUTH_MAX_FAILURES_PER_ACCOUNT", 10, minimum=1)
HUB_AUTH_MAX_FAILURES_PER_ADDRESS = env_int("HUB_AUTH_MAX_FAILURES_PER_ADDRESS", 50, minimum=1)
# Proxies (addresses) whose X-Forwarded-For is believed, for the client address.
HUB_TRUSTED_PROXIES = env_list("HUB_TRUSTED_PROXIES", "127.0.0.1,::1")

HUB_REDIS_URL = env_str("HUB_REDIS_URL")
if HUB_REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": HUB_REDIS_URL,
        }
    }
else:
    # Shared by every process on the database (rate limits must hold across workers).
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "hub_cache",
        }
    }

# --- Background jobs (hub.celery) -----------------------------------------------------------

# With Redis, tasks go to `hub worker` and `hub beat` sends the periodic ones. Without it
# tasks run in the process that sends them, and the periodic jobs run from a thread in
# each `hub serve` worker (hub.scheduler; one of them takes each period).
CELERY_BROKER_URL = HUB_REDIS_URL or "memory://"
CELERY_TASK_ALWAYS_EAGER = not HUB_REDIS_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_IGNORE_RESULT = True
# Tasks are idempotent: acknowledged when done, so a worker that dies mid-task loses nothing.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_TIMEZONE = "UTC"
# Periodic jobs: task name -> seconds between runs.
# Removing the files of expired audit export jobs (audit.export_jobs).
HUB_AUDIT_EXPORT_SWEEP_INTERVAL = env_int("HUB_AUDIT_EXPORT_SWEEP_INTERVAL", 900, minimum=0)
# Claiming queued (or abandoned) audit export jobs from the database and running them
# (audit.export_runner): how long a requester waits for a job to start without Redis.
HUB_AUDIT_EXPORT_POLL_INTERVAL = env_int("HUB_AUDIT_EXPORT_POLL_INTERVAL", 5, minimum=0)
HUB_PERIODIC_JOBS = {
    "registry.collect_garbage": HUB_GC_INTERVAL,
    "registry.expire_uploads": HUB_UPLOAD_CLEANUP_INTERVAL,
    "registry.apply_retention": HUB_RETENTION_INTERVAL,
    "registry.deliver_due_webhooks": HUB_WEBHOOK_SWEEP_INTERVAL,
    "audit.apply_retention": HUB_RETENTION_INTERVAL,
    "audit.expire_exports": HUB_AUDIT_EXPORT_SWEEP_INTERVAL,
    "audit.run_exports": HUB_AUDIT_EXPORT_POLL_INTERVAL,
}
CELERY_BEAT_SCHEDULE = {
    name: {"task": name, "schedule": float(every)}
    for name, every in HUB_PERIODIC_JOBS.items()
    if every > 0
}

# --- Sign-up and sign-in (django-allauth) ----------------------------------------------------

SITE_ID = 1
LOGIN_REDIRECT_URL = "/"
ACCOUNT_LOGOUT_REDIRECT_URL = "/"
ACCOUNT_LOGIN_METHODS = {"username", "email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "username*", "password1*", "password2*"]
ACCOUNT_EMAIL_VERIFICATION = env_choice(
    "HUB_EMAIL_VERIFICATION", ("none", "optional", "mandatory"), "optional"
)
ACCOUNT_ADAPTER = "accounts.adapters.AccountAdapter"
ACCOUNT_USERNAME_VALIDATORS = "accounts.adapters.USERNAME_VALIDATORS"
ACCOUNT_PRESERVE_USERNAME_CASING = False
ACCOUNT_RATE_LIMITS = {
    "login_failed": env_str("HUB_LOGIN_RATE_LIMIT", "20/m/ip,10/5m/key"),
    "signup": "20/m/ip",
}
# Open sign-up can be switched off; then accounts are made by administrators.
HUB_SIGNUP_OPEN = env_bool("HUB_SIGNUP_OPEN", True)
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = env_str("HUB_MFA_ISSUER", "Hub")
SOCIALACCOUNT_ONLY = False
SOCIALACCOUNT_PROVIDERS: dict[str, dict[str, object]] = {}
if env_str("HUB_OIDC_CLIENT_ID"):
    if not env_str("HUB_OIDC_SERVER_URL"):
        raise ImproperlyConfigured("HUB_OIDC_SERVER_URL must be set with HUB_OIDC_CLIENT_ID")
    SOCIALACCOUNT_PROVIDERS["openid_connect"] = {
        "APPS": [
            {
                "provider_id": env_str("HUB_OIDC_PROVIDER_ID", "oidc"),
                "name": env_str("HUB_OIDC_NAME", "Single sign-on"),
                "client_id": env_str("HUB_OIDC_CLIENT_ID"),
                "secret": env_str("HUB_OIDC_CLIENT_SECRET"),
                "settings": {"server_url": env_str("HUB_OIDC_SERVER_URL")},
            }
        ]
    }

# E-mail: printed to the console unless an SMTP server is configured.
if env_str("HUB_EMAIL_HOST"):
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_HOST = env_str("HUB_EMAIL_HOST")
    EMAIL_PORT = env_int("HUB_EMAIL_PORT", 587, minimum=1)
    EMAIL_HOST_USER = env_str("HUB_EMAIL_USER")
    EMAIL_HOST_PASSWORD = env_str("HUB_EMAIL_PASSWORD")
    EMAIL_USE_TLS = env_bool("HUB_EMAIL_USE_TLS", True)
else:
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
DEFAULT_FROM_EMAIL = env_str("HUB_EMAIL_FROM", "hub@localhost")

# --- Audit trail ----------------------------------------------------------------------------

# Seconds between sealing rounds of each process's sealing thread: 0 seals every 2 s
# under gunicorn only (`hub serve`), a positive value starts the thread in any process,
# a negative one never (then run `hub audit seal` from cron).
HUB_AUDIT_SEAL_INTERVAL = env_int("HUB_AUDIT_SEAL_INTERVAL", 0)
# Whether manifest pulls are recorded at all (every other event always is).
HUB_AUDIT_PULLS = env_bool("HUB_AUDIT_PULLS", True)
# Under gunicorn, pull events are queued and inserted together every this many
# milliseconds (0: each pull is inserted on its own).
HUB_AUDIT_PULL_FLUSH_MS = env_int("HUB_AUDIT_PULL_FLUSH_MS", 500, minimum=0)
# Days audit events are kept in the database before `hub audit retention` archives them
# to the blob store and removes them (0: kept forever). An organisation may set its own.
HUB_AUDIT_RETENTION_DAYS = env_int("HUB_AUDIT_RETENTION_DAYS", 0, minimum=0)
# Exports matching more sealed events than this run as a background job (audit.export_jobs)
# that writes the file to the blob store; smaller ones stream in the request (0: all do).
HUB_AUDIT_EXPORT_SYNC_LIMIT = env_int("HUB_AUDIT_EXPORT_SYNC_LIMIT", 100_000, minimum=0)
# Seconds an export job's file is kept, and a download link made for it stays valid.
HUB_AUDIT_EXPORT_KEEP = env_int("HUB_AUDIT_EXPORT_KEEP", 24 * 3600, minimum=60)
HUB_AUDIT_EXPORT_LINK_TTL = env_int("HUB_AUDIT_EXPORT_LINK_TTL", 3600, minimum=10)
# Seconds a runner's claim on an export job lasts; it renews it every third of that while
# it writes. A job whose claim lapsed (its runner died) is claimed again and rewritten.
HUB_AUDIT_EXPORT_LEASE = env_int("HUB_AUDIT_EXPORT_LEASE", 60, minimum=3)

# --- Management API -------------------------------------------------------------------------

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.api_auth.HubAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 100,
    "EXCEPTION_HANDLER": "accounts.api_errors.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Hub management API",
    "DESCRIPTION": "Organisations, teams, members, repositories, grants, tokens and robots.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "ENUM_NAME_OVERRIDES": {
        "OrganisationRoleEnum": "teams.models.Membership.Role",
        "TeamRoleEnum": "teams.models.TeamMember.Role",
    },
}

# --- Operations -----------------------------------------------------------------------------

# Prometheus metrics at /metrics, for site administrators or the bearer HUB_METRICS_TOKEN.
HUB_METRICS_ENABLED = env_bool("HUB_METRICS_ENABLED", False)
HUB_METRICS_TOKEN = env_str("HUB_METRICS_TOKEN")
if HUB_METRICS_ENABLED:
    # Outermost, so that it times everything the other middleware does too.
    MIDDLEWARE.insert(0, "hub.metrics_view.MetricsMiddleware")
# `hub worker` and `hub beat` have no web server: with a port set, each listens on it for
# Prometheus (a pod port scraped by annotation). Counts only, no names: unauthenticated.
HUB_WORKER_METRICS_PORT = env_int("HUB_WORKER_METRICS_PORT", 0, minimum=0)
HUB_WORKER_METRICS_ADDR = env_str("HUB_WORKER_METRICS_ADDR", "0.0.0.0")  # noqa: S104 - a pod port

# `plain` for a terminal, `json` (one object per line on stdout) for log collectors.
HUB_LOG_FORMAT = env_choice("HUB_LOG_FORMAT", ("plain", "json"), "plain")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "hub.logs.JsonFormatter"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout" if HUB_LOG_FORMAT == "json" else "ext://sys.stderr",
            **({"formatter": "json"} if HUB_LOG_FORMAT == "json" else {}),
        }
    },
    "root": {"handlers": ["console"], "level": env_str("HUB_LOG_LEVEL", "INFO").upper()},
}

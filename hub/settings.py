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
        tmp = path.with_suffix(f".{secrets.token_hex(4)}.tmp")
        tmp.write_text(secrets.token_urlsafe(50))
        tmp.chmod(0o600)
        tmp.replace(path) if not path.exists() else tmp.unlink()
    return path.read_text().strip()


DEBUG = env_bool("HUB_DEBUG", False)
SECRET_KEY = _secret_key()
ALLOWED_HOSTS = env_list("HUB_ALLOWED_HOSTS", "*")

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "hub",
    "registry",
    "teams",
    "accounts",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
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
STATIC_ROOT = DATA_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"] if (BASE_DIR / "static").is_dir() else []

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

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("HUB_LOG_LEVEL", "INFO").upper()},
}

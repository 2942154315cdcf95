"""The WSGI application: the registry API on a short middleware chain, the rest on the full one.

/v2/ requests carry their own credentials (no sessions, cookies, CSRF or messages), and
a pull is a few hundred microseconds of work, so the chain in front of it matters.
/metrics takes the short chain too; /healthz and /readyz take none (hub.health).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import django
from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler

from hub import health

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hub.settings")

REGISTRY_MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "audit.context.AuditContextMiddleware",
]
SHORT_CHAIN_PATHS = ("/v2/", "/metrics")


class RegistryHandler(WSGIHandler):
    def load_middleware(self, is_async: bool = False) -> None:
        full = settings.MIDDLEWARE
        settings.MIDDLEWARE = [
            *(["hub.metrics_view.MetricsMiddleware"] if settings.HUB_METRICS_ENABLED else []),
            *REGISTRY_MIDDLEWARE,
        ]
        try:
            super().load_middleware(is_async)
        finally:
            settings.MIDDLEWARE = full


class Hub:
    def __init__(self) -> None:
        django.setup(set_prefix=False)
        self.registry = RegistryHandler()
        self.site = WSGIHandler()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path.startswith(SHORT_CHAIN_PATHS):
            return self.registry(environ, start_response)
        if path in health.PATHS:
            return health.app(environ, start_response)
        return self.site(environ, start_response)


application = Hub()

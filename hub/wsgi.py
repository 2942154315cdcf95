"""The WSGI application: the registry API on a short middleware chain, the rest on the full one.

/v2/ requests carry their own credentials (no sessions, cookies, CSRF or messages), and
a pull is a few hundred microseconds of work, so the chain in front of it matters.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import django
from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hub.settings")

REGISTRY_MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "audit.context.AuditContextMiddleware",
]


class RegistryHandler(WSGIHandler):
    def load_middleware(self, is_async: bool = False) -> None:
        full = settings.MIDDLEWARE
        settings.MIDDLEWARE = REGISTRY_MIDDLEWARE
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
        handler = self.registry if environ.get("PATH_INFO", "").startswith("/v2/") else self.site
        return handler(environ, start_response)


application = Hub()

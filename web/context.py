"""What every page's template needs besides the request."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest


def registry_host(request: HttpRequest) -> str:
    """host[:port] that docker and friends reach this registry at."""
    public = str(settings.HUB_PUBLIC_URL)
    if public:
        return public.split("://", 1)[-1]
    return request.get_host()


def site(request: HttpRequest) -> dict[str, Any]:
    return {"hub_signup_open": bool(settings.HUB_SIGNUP_OPEN), "hub_host": registry_host(request)}

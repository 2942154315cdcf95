"""403, 404 and 500 in Hub's look (the API and the registry keep their own answers)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.template import loader
from django.views import defaults

_MACHINE_PREFIXES = ("/v2/", "/api/", "/auth/")


def _for_machines(request: HttpRequest) -> bool:
    return request.path.startswith(_MACHINE_PREFIXES)


def forbidden(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _for_machines(request):
        return defaults.permission_denied(request, exception or Exception())
    return HttpResponse(loader.render_to_string("403.html", request=request), status=403)


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _for_machines(request):
        return defaults.page_not_found(request, exception or Exception())
    return HttpResponse(loader.render_to_string("404.html", request=request), status=404)


def server_error(request: HttpRequest) -> HttpResponse:
    # No request context: whatever failed (the database, say) must not fail this page too.
    context: dict[str, Any] = {"minimal": True}
    return HttpResponse(loader.render_to_string("500.html", context), status=500)

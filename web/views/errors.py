"""403, 404 and 500 in Hub's look (the API and the registry keep their own answers), and
the page a form whose CSRF token expired answers."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.template import loader
from django.views import defaults

_MACHINE_PREFIXES = ("/v2/", "/api/", "/auth/")


def _for_machines(request: HttpRequest) -> bool:
    return request.path.startswith(_MACHINE_PREFIXES)


def forbidden_page(request: HttpRequest, reason: str) -> HttpResponse:
    """The 403 a page answers someone who may see it but not change it (the reason says who may)."""
    return render(request, "403.html", {"reason": reason}, status=403)


def forbidden(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _for_machines(request):
        return defaults.permission_denied(request, exception or Exception())
    return HttpResponse(loader.render_to_string("403.html", request=request), status=403)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """settings.CSRF_FAILURE_VIEW: most often a form left open past its session's life."""
    if _for_machines(request):
        from django.views.csrf import csrf_failure as plain

        return plain(request, reason)
    return HttpResponse(loader.render_to_string("403_csrf.html", request=request), status=403)


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _for_machines(request):
        return defaults.page_not_found(request, exception or Exception())
    return HttpResponse(loader.render_to_string("404.html", request=request), status=404)


def server_error(request: HttpRequest) -> HttpResponse:
    # No request context: whatever failed (the database, say) must not fail this page too.
    context: dict[str, Any] = {"minimal": True}
    return HttpResponse(loader.render_to_string("500.html", context), status=500)

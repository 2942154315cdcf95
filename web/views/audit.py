"""The audit log: the events the viewer may read (audit.queries), filtered, and exported."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import render

from audit import exporting
from audit.queries import BadFilter, apply_filters, visible_events
from web.access import actor_of

FILTERS = ("since", "until", "actor", "action", "repository", "outcome")
EVENTS_PER_PAGE = 50


def _filters(request: HttpRequest) -> dict[str, str]:
    return {name: request.GET.get(name, "").strip()[:255] for name in FILTERS}


@login_required
def audit_log(request: HttpRequest) -> HttpResponse:
    actor = actor_of(request)
    given = _filters(request)
    error = ""
    events = visible_events(actor)
    try:
        events = apply_filters(events, given)
    except BadFilter as exc:
        error = str(exc)
        events = events.none()
    page = Paginator(events.order_by("-id"), EVENTS_PER_PAGE).get_page(request.GET.get("page"))
    query = urlencode({k: v for k, v in given.items() if v})
    return render(
        request,
        "web/audit.html",
        {
            "page": page,
            "filters": given,
            "error": error,
            "formats": exporting.FORMATS,
            "query": query,
            "outcomes": ["success", "failure", "denied"],
        },
        status=400 if error else 200,
    )


@login_required
def audit_export(request: HttpRequest) -> HttpResponseBase:
    actor = actor_of(request)
    fmt = request.GET.get("format", "csv")
    if fmt not in exporting.FORMATS:
        return HttpResponse("unknown export format", status=400, content_type="text/plain")
    try:
        events = apply_filters(visible_events(actor), _filters(request))
    except BadFilter as exc:
        return HttpResponse(str(exc), status=400, content_type="text/plain")
    return exporting.download(fmt, events)

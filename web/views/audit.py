"""The audit log: the events the viewer may read (audit.queries), filtered, and exported."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse

from audit import export_jobs, exporting
from audit.export_api import download_url
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
    job = export_jobs.visible_jobs(actor).filter(id=_int(request.GET.get("export"))).first()
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
            "job": job,
            "job_link": download_url(job) if job and export_jobs.downloadable(job) else "",
        },
        status=400 if error else 200,
    )


def _int(value: str | None) -> int:
    return int(value) if value and value.isdigit() and len(value) < 18 else 0


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
    if export_jobs.over_limit(events):
        # Too big for one request: written in the background; the log page shows the job.
        job = export_jobs.export_job_start(actor=actor, fmt=fmt, filters=_filters(request))
        return redirect(f"{reverse('web:audit')}?{urlencode({'export': job.id})}")
    return exporting.download(fmt, events)

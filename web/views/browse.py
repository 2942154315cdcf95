"""Home, explore (search) and namespace pages."""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from registry.policies.actions import quota_set
from registry.policies.models import Quota
from registry.policies.rules import namespace_usage
from teams.models import Namespace
from web import queries
from web.access import actor_of, is_home_of, visible_namespace
from web.forms import QuotaForm
from web.views.errors import forbidden_page

REPOSITORIES_PER_PAGE = 30
MIB = 1024 * 1024


def home(request: HttpRequest) -> HttpResponse:
    actor = actor_of(request)
    context: dict[str, object] = {"query": ""}
    if actor.user is not None:
        organisations = queries.member_organisations(actor)
        repositories = queries.with_summary(
            queries.home_repositories(actor, organisations).select_related("namespace")
        ).order_by("-last_push", "name")[:20]
        context |= {
            "organisations": organisations,
            "repositories": repositories,
            "activity": queries.home_activity(actor, organisations).order_by("-id")[:20],
        }
    else:
        context["repositories"] = queries.with_summary(
            queries.search(actor, "").filter(visibility="public")
        ).order_by("-last_push", "name")[:20]
    return render(request, "web/home.html", context)


def explore(request: HttpRequest) -> HttpResponse:
    actor = actor_of(request)
    query = request.GET.get("q", "").strip()[:200]
    found = queries.with_summary(queries.search(actor, query)).order_by("name")
    page = Paginator(found, REPOSITORIES_PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "web/explore.html", {"query": query, "page": page})


@require_http_methods(["GET", "POST"])
def namespace(request: HttpRequest, name: str) -> HttpResponse:
    actor = actor_of(request)
    found = visible_namespace(actor, name)
    home = is_home_of(actor, found)
    # Site administrators set quotas (as /api/namespaces/<ns>/quota/ says); members see them.
    may_set_quota = actor.is_superuser
    quota_form = QuotaForm(prefix="quota", initial={"limit_mib": _limit_mib(found)})
    if request.method == "POST":
        if not may_set_quota:
            return forbidden_page(request, "Only site administrators set quotas.")
        quota_form = QuotaForm(request.POST, prefix="quota")
        if quota_form.is_valid():
            mib = quota_form.cleaned_data["limit_mib"]
            quota_set(namespace=found, limit_bytes=None if mib is None else mib * MIB)
            messages.success(request, f"Saved the quota of {found.name}.")
            return redirect(reverse("web:namespace", args=[found.name]))
    repositories = queries.with_summary(queries.search(actor, "").filter(namespace=found)).order_by(
        "name"
    )
    page = Paginator(repositories, REPOSITORIES_PER_PAGE).get_page(request.GET.get("page"))
    shows_quota = home or may_set_quota
    return render(
        request,
        "web/namespace.html",
        {
            "namespace": found,
            "organisation": found.organisation,
            "page": page,
            "is_home": home,
            "shows_quota": shows_quota,
            "quota_limit": _limit_bytes(found) if shows_quota else None,
            "quota_used": namespace_usage(found.pk) if shows_quota else None,
            "quota_form": quota_form if may_set_quota else None,
        },
    )


def _limit_bytes(namespace: Namespace) -> int | None:
    quota = Quota.objects.filter(namespace=namespace).first()
    return None if quota is None else quota.limit_bytes


def _limit_mib(namespace: Namespace) -> int | None:
    limit = _limit_bytes(namespace)
    return None if limit is None else limit // MIB

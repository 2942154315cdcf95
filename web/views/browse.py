"""Home, explore (search) and namespace pages."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from web import queries
from web.access import actor_of, is_home_of, visible_namespace

REPOSITORIES_PER_PAGE = 30


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


def namespace(request: HttpRequest, name: str) -> HttpResponse:
    actor = actor_of(request)
    found = visible_namespace(actor, name)
    repositories = queries.with_summary(queries.search(actor, "").filter(namespace=found)).order_by(
        "name"
    )
    page = Paginator(repositories, REPOSITORIES_PER_PAGE).get_page(request.GET.get("page"))
    return render(
        request,
        "web/namespace.html",
        {
            "namespace": found,
            "organisation": found.organisation,
            "page": page,
            "is_home": is_home_of(actor, found),
        },
    )

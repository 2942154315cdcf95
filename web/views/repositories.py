"""Repository, tag deletion and manifest pages."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Sum
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from registry.errors import RegistryError
from registry.models import Manifest, ManifestChild, Repository, Tag
from registry.services.manifests import manifest_delete
from teams.models import Level
from web import images, queries
from web.access import actor_of, may_see_activity, readable_repository
from web.markdown import render as render_markdown
from web.views.errors import forbidden_page

SORTS = {
    "updated": ("-updated_at", "name"),
    "oldest": ("updated_at", "name"),
    "name": ("name",),
    "-name": ("-name",),
}


def _image_sizes(page_tags: Sequence[Tag]) -> dict[int, int]:
    """The size of each manifest's blobs (config and layers), for one page of tags only."""
    sizes = (
        Manifest.blobs.through.objects.filter(manifest_id__in=[t.manifest_id for t in page_tags])
        .values("manifest_id")
        .annotate(total=Sum("blob__size"))
    )
    return {row["manifest_id"]: row["total"] or 0 for row in sizes}


def _index_sizes(page_tags: Sequence[Tag]) -> dict[int, int]:
    """The size of what each index on the page names (its children's blobs)."""
    indexes = [t.manifest_id for t in page_tags if t.manifest.media_type in images.mt.INDEXES]
    sizes = (
        ManifestChild.objects.filter(parent_id__in=indexes)
        .values("parent_id")
        .annotate(total=Sum("child__blobs__size"))
    )
    return {row["parent_id"]: row["total"] or 0 for row in sizes}


def repository(request: HttpRequest, name: str) -> HttpResponse:
    actor = actor_of(request)
    repo, level = readable_repository(actor, name)
    full = Repository.objects.select_related("namespace__organisation").get(pk=repo.pk)
    query = request.GET.get("q", "").strip()[:128]
    sort = request.GET.get("sort", "updated")
    if sort not in SORTS:
        sort = "updated"
    # Sort and page the tags alone, then load the page's rows with their manifests: the
    # join then covers one page, not every tag (a repository may have 10,000 of them).
    tag_ids = Tag.objects.filter(repository=full).order_by(*SORTS[sort])
    if query:
        tag_ids = tag_ids.filter(name__icontains=query)
    page = Paginator(tag_ids.values_list("pk", flat=True), settings.HUB_WEB_PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    ids = list(page.object_list)
    loaded = Tag.objects.select_related("manifest").defer("manifest__content").in_bulk(ids)
    page_tags = [loaded[pk] for pk in ids if pk in loaded]
    sizes = _image_sizes(page_tags) | _index_sizes(page_tags)
    # The page's manifests with their bytes (small; the tag rows above deferred them).
    shown = Manifest.objects.filter(pk__in={t.manifest_id for t in page_tags}).only(
        "pk", "media_type", "content"
    )
    platforms = images.page_platforms(list(shown))
    show_activity = may_see_activity(actor, full)
    activity = queries.repository_activity(actor, full) if show_activity else None
    pushed = queries.pushers(activity, [t.name for t in page_tags]) if activity is not None else {}
    rows: list[dict[str, Any]] = []
    for tag in page_tags:
        rows.append(
            {
                "tag": tag,
                "size": sizes.get(tag.manifest_id, 0),
                "platforms": platforms.get(tag.manifest_id, []),
                "pushed": pushed.get(tag.name),
            }
        )
    context = {
        "repository": full,
        "level": level,
        "is_admin": level >= Level.ADMIN,
        "may_push": level >= Level.WRITE,
        "description": render_markdown(full.description) if full.description else "",
        "page": page,
        "rows": rows,
        "query": query,
        "sort": sort,
        "sorts": list(SORTS),
        "show_activity": show_activity,
        "activity": activity.order_by("-id")[:10] if activity is not None else [],
        # Unfiltered, the paginator has counted them already.
        "tag_total": Tag.objects.filter(repository=full).count() if query else page.paginator.count,
    }
    template = "web/_tags.html" if request.headers.get("HX-Request") else "web/repository.html"
    return render(request, template, context)


@require_http_methods(["GET", "POST"])
def tag_delete(request: HttpRequest, name: str, tag: str) -> HttpResponse:
    actor = actor_of(request)
    repo, level = readable_repository(actor, name)
    found = Tag.objects.select_related("manifest").filter(repository_id=repo.pk, name=tag).first()
    if found is None:
        raise Http404("no such tag")
    if level < Level.ADMIN:
        return forbidden_page(request, f"Only administrators of {repo.name} may delete its tags.")
    if request.method == "POST":
        try:
            manifest_delete(repository=repo, tag=tag, digest=None)
        except RegistryError as exc:  # an immutable tag, say: said on the page, not a 500
            messages.error(request, exc.message)
        else:
            messages.success(request, f"Deleted the tag {tag} of {repo.name}.")
        return redirect(reverse("web:repository", args=[repo.name]))
    return render(request, "web/tag_delete.html", {"repository": repo, "tag": found})


def manifest(request: HttpRequest, name: str, digest: str) -> HttpResponse:
    actor = actor_of(request)
    repo, level = readable_repository(actor, name)
    full = Repository.objects.select_related("namespace__organisation").get(pk=repo.pk)
    found = Manifest.objects.filter(repository=full, digest=digest).first()
    if found is None:
        raise Http404("no such manifest")
    parsed = images.parse(found)
    config = images.read_config(found, parsed.config) if parsed.kind == "image" else None
    children: set[str] = set()
    if parsed.kind == "index":
        children = set(
            Manifest.objects.filter(
                repository=full, digest__in=[d.digest for d in parsed.manifests]
            ).values_list("digest", flat=True)
        )
    referrers = Manifest.objects.filter(repository=full, subject_digest=found.digest).order_by(
        "digest"
    )
    tags = list(found.tags.order_by("name").values_list("name", flat=True))
    show_activity = may_see_activity(actor, full)
    history: list[Any] = []
    if show_activity:
        events = queries.repository_activity(actor, full).filter(
            action__in=("manifest.push", "tag.move", "tag.delete")
        )
        history = list(
            (events.filter(digest=found.digest) | events.filter(tag__in=tags)).order_by("-id")[:100]
        )
    return render(
        request,
        "web/manifest.html",
        {
            "repository": full,
            "manifest": found,
            "parsed": parsed,
            "config": config,
            "children": children,
            "referrers": referrers,
            "tags": tags,
            "show_activity": show_activity,
            "history": history,
            "is_admin": level >= Level.ADMIN,
        },
    )

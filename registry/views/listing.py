"""tags/list, _catalog and referrers: paginated with `n`, `last` and a Link header."""

from __future__ import annotations

from urllib.parse import urlencode

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from accounts.request_auth import as_subject
from registry import access, reads
from registry import mediatypes as mt
from registry.errors import RegistryError
from registry.names import check_digest, check_name
from registry.services import manifests as svc
from registry.views.base import json_response, registry_view
from teams.permissions import ANONYMOUS, Actor, visible_repositories


def _page_size(request: HttpRequest) -> int:
    raw = request.GET.get("n")
    cap = settings.HUB_PAGE_SIZE_MAX
    if raw is None or raw == "":
        return cap
    try:
        n = int(raw)
    except ValueError:
        raise RegistryError(
            "PAGINATION_NUMBER_INVALID", "n must be a whole number", status=400
        ) from None
    if n < 0:
        raise RegistryError("PAGINATION_NUMBER_INVALID", "n must not be negative", status=400)
    return min(n, cap)


def _last(request: HttpRequest) -> str | None:
    """`last`, cut at a NUL: no stored name holds one (nor may PostgreSQL compare with one),
    so the names after the cut value are exactly the names after the whole value."""
    last = request.GET.get("last")
    return last.split("\x00", 1)[0] if last is not None else None


def _with_link(response: HttpResponse, path: str, n: int, last: str | None) -> HttpResponse:
    if last is not None:
        response["Link"] = f'<{path}?{urlencode({"n": n, "last": last})}>; rel="next"'
    return response


@registry_view("GET")
def tags_list(request: HttpRequest, name: str) -> HttpResponse:
    check_name(name)
    n = _page_size(request)
    last = _last(request)
    access.require(
        request, name, "pull", hidden=RegistryError("NAME_UNKNOWN", detail={"name": name})
    )
    # One row even for n=0: the query also tells an unknown repository apart.
    names = reads.tag_names(repository_name=name, after=last or None, limit=n + 1)
    if names is None:
        raise RegistryError("NAME_UNKNOWN", detail={"name": name})
    more = n > 0 and len(names) > n
    names = names[:n]
    response = json_response({"name": name, "tags": names})
    return _with_link(response, f"/v2/{name}/tags/list", n, names[-1] if more else None)


def _catalog_reader(request: HttpRequest) -> Actor:
    """Whose view of the catalog to list. A bearer token names only the repositories it was
    issued for, so one holding `registry:catalog:*` lists what its holder may see now
    (within the access token it came from); an anonymous one, what anybody may see. Any
    other token is asked to come back with the catalog scope, as distribution does."""
    actor = access.actor_of(request)
    if actor.granted is None:
        return actor
    if actor.is_anonymous:
        return ANONYMOUS
    if not actor.catalog:
        scope = "registry:catalog:*"
        raise access.refused(request, "", "catalog", access.unauthorized(request, scope))
    return as_subject(actor)


@registry_view("GET")
def catalog(request: HttpRequest) -> HttpResponse:
    n = _page_size(request)
    last = _last(request)
    # Only what the caller may pull, filtered in the one query.
    qs = visible_repositories(_catalog_reader(request))
    if last:
        qs = qs.filter(name__gt=last)
    names = list(qs.order_by("name").values_list("name", flat=True)[: n + 1]) if n else []
    more = len(names) > n
    names = names[:n]
    response = json_response({"repositories": names})
    return _with_link(response, "/v2/_catalog", n, names[-1] if more else None)


@registry_view("GET")
def referrers(request: HttpRequest, name: str, digest: str) -> HttpResponse:
    check_name(name)
    subject = check_digest(digest)
    artifact_type = request.GET.get("artifactType") or None
    n = settings.HUB_PAGE_SIZE_MAX
    # No stored artifactType holds a NUL (nor may PostgreSQL compare with one).
    readable = access.readable(request, name) and "\x00" not in (artifact_type or "")
    descriptors = (
        svc.referrers(
            repository_name=name,
            digest=subject,
            artifact_type=artifact_type,
            limit=n + 1,
            last=_last(request) or None,
        )
        if readable
        else []
    )
    more = len(descriptors) > n
    descriptors = descriptors[:n]
    response = json_response(
        {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": descriptors},
        content_type=mt.OCI_INDEX,
    )
    if artifact_type:
        response["OCI-Filters-Applied"] = "artifactType"
    if more:
        # The spec asks for a Link to the next page when not all descriptors fit in one.
        query = {"last": descriptors[-1]["digest"]}
        if artifact_type:
            query["artifactType"] = artifact_type
        response["Link"] = f'</v2/{name}/referrers/{subject}?{urlencode(query)}>; rel="next"'
    return response

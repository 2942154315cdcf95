"""GET, HEAD, PUT and DELETE of manifests, by tag or by digest."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from audit.pulls import record_pull
from registry import access, reads
from registry.errors import RegistryError
from registry.models import Repository
from registry.names import check_name, parse_reference
from registry.services import manifests as svc
from registry.services.repositories import repository_get, repository_get_or_create
from registry.streams import body_chunks, declared_length
from registry.views.base import registry_view
from registry.webhooks import dispatch as webhooks


@registry_view("GET", "PUT", "DELETE")
def manifest(request: HttpRequest, name: str, reference: str) -> HttpResponse:
    check_name(name)
    tag, digest = parse_reference(reference)
    if request.method == "PUT":
        return _put(request, name, tag, digest)
    if request.method == "DELETE":
        access.require(
            request, name, "delete", hidden=RegistryError("NAME_UNKNOWN", detail={"name": name})
        )
        repository = repository_get(name)
        if not svc.manifest_delete(repository=repository, tag=tag, digest=digest):
            raise RegistryError("MANIFEST_UNKNOWN", detail={"reference": reference})
        return HttpResponse(status=202)

    access.require(
        request, name, "pull", hidden=RegistryError("NAME_UNKNOWN", detail={"name": name})
    )
    row = reads.manifest_lookup(
        repository_name=name,
        tag=tag,
        digest=str(digest) if digest is not None else None,
        with_content=request.method == "GET",
    )
    if row is None:
        if not Repository.objects.filter(name=name).exists():
            raise RegistryError("NAME_UNKNOWN", detail={"name": name})
        raise RegistryError("MANIFEST_UNKNOWN", detail={"reference": reference})
    if request.method == "GET":
        record_pull(request=request, repository=name, tag=tag, digest=row.digest)
        webhooks.notify(
            event="pull", repository=name, tag=tag, digest=row.digest, media_type=row.media_type
        )
    headers = {"Docker-Content-Digest": row.digest, "ETag": f'"{row.digest}"'}
    response = HttpResponse(row.content or b"", content_type=row.media_type, headers=headers)
    response["Content-Length"] = str(row.size)
    return response


def _put(request: HttpRequest, name: str, tag: str | None, digest: object) -> HttpResponse:
    access.require(request, name, "push", hidden=_push_denied(name))
    limit = settings.HUB_MANIFEST_MAX_BYTES
    length = declared_length(request)
    if length is not None and length > limit:
        raise RegistryError("SIZE_INVALID", f"manifest is larger than {limit} bytes", status=413)
    content = bytearray()
    for chunk in body_chunks(request, chunk_size=256 * 1024):
        content += chunk
        if len(content) > limit:
            raise RegistryError(
                "SIZE_INVALID", f"manifest is larger than {limit} bytes", status=413
            )
    repository = repository_get_or_create(name=name, actor=access.actor_of(request))
    manifest_obj, _ = svc.manifest_put(
        repository=repository,
        reference_tag=tag,
        reference_digest=digest,  # type: ignore[arg-type]
        content=bytes(content),
        content_type=request.META.get("CONTENT_TYPE", ""),
        extra_tags=request.GET.getlist("tag") if digest is not None else None,
    )
    headers = {
        "Location": f"/v2/{name}/manifests/{manifest_obj.digest}",
        "Docker-Content-Digest": manifest_obj.digest,
    }
    if manifest_obj.subject_digest:
        headers["OCI-Subject"] = manifest_obj.subject_digest
    return HttpResponse(status=201, headers=headers)


def _push_denied(name: str) -> RegistryError:
    return RegistryError("DENIED", f"you may not push to {name}")

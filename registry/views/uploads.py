"""Blob uploads: POST (monolithic, session or mount), PATCH, PUT, GET status, DELETE."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from registry import access
from registry.errors import RegistryError
from registry.models import Repository, Upload
from registry.names import check_digest, check_name
from registry.policies import rules
from registry.services import uploads as svc
from registry.services.repositories import repository_get, repository_get_or_create
from registry.streams import body_chunks, declared_length, has_body
from registry.views.base import registry_view


def _created(name: str, digest: str) -> HttpResponse:
    return HttpResponse(
        status=201,
        headers={"Location": f"/v2/{name}/blobs/{digest}", "Docker-Content-Digest": digest},
    )


def _session_headers(upload: Upload) -> dict[str, str]:
    return {
        "Location": svc.upload_location(upload),
        "Range": svc.upload_range_header(upload.size),
        "Docker-Upload-UUID": str(upload.id),
    }


@registry_view("POST")
def upload_start(request: HttpRequest, name: str) -> HttpResponse:
    check_name(name)
    access.require(
        request, name, "push", hidden=RegistryError("DENIED", f"you may not push to {name}")
    )
    actor = access.actor_of(request)
    mount, source = request.GET.get("mount"), request.GET.get("from")
    digest_param = request.GET.get("digest")
    if mount is not None and source:
        mount_digest = check_digest(mount)
        check_name(source)
        source_repo = Repository.objects.filter(name=source).first()
        # Mounting needs read access to the source, or it would leak its blobs.
        if source_repo is not None and access.may_read(request, source):
            repository = repository_get_or_create(name=name, actor=actor)
            if svc.blob_mount(repository=repository, source=source_repo, digest=mount_digest):
                return _created(name, str(mount_digest))
        # Can't mount: the spec asks for an ordinary upload session instead.
    repository = repository_get_or_create(name=name, actor=actor)
    if digest_param is not None:
        digest = check_digest(digest_param)
        # A bad Content-Length is SIZE_INVALID, and one over quota DENIED, before any work.
        length = declared_length(request)
        if length is not None:
            rules.check_room(repository, incoming=length, digest=str(digest))
        svc.blob_put_monolithic(
            repository=repository, digest=digest, chunks=body_chunks(request), owner=actor.key
        )
        return _created(name, str(digest))
    upload = svc.upload_start(repository=repository, owner=actor.key)
    upload.repository = repository
    return HttpResponse(status=202, headers=_session_headers(upload))


def _content_range(request: HttpRequest) -> svc.ContentRange | None:
    raw = request.headers.get("Content-Range")
    return svc.parse_content_range(raw) if raw else None


@registry_view("GET", "PATCH", "PUT", "DELETE")
def upload(request: HttpRequest, name: str, upload_id: str) -> HttpResponse:
    check_name(name)
    access.require(request, name, "push", hidden=RegistryError("BLOB_UPLOAD_UNKNOWN"))
    repository = _repo_or_unknown(name)
    # A session is continued only by whoever opened it (Quay's CVE-2026-32589).
    session = svc.upload_get(
        repository=repository, upload_id=upload_id, owner=access.actor_of(request).key
    )
    session.repository = repository

    if request.method in ("GET", "HEAD"):
        return HttpResponse(status=204, headers=_session_headers(session))
    if request.method == "DELETE":
        svc.upload_discard(upload=session)
        return HttpResponse(status=204)
    if request.method == "PATCH":
        length = declared_length(request)
        if length:
            rules.check_room(repository, incoming=session.size + length)
        session = svc.upload_append(
            upload=session,
            chunks=body_chunks(request),
            content_range=_content_range(request),
            length=length,
        )
        session.repository = repository
        return HttpResponse(status=202, headers=_session_headers(session))
    # PUT: finish, with or without a last chunk.
    digest_param = request.GET.get("digest")
    if not digest_param:
        raise RegistryError("DIGEST_INVALID", "the digest query parameter is required")
    digest = check_digest(digest_param)
    length = declared_length(request)
    if length:
        rules.check_room(repository, incoming=session.size + length, digest=str(digest))
    blob = svc.upload_finish(
        upload=session,
        digest=digest,
        chunks=body_chunks(request) if has_body(request) else None,
        content_range=_content_range(request),
        length=length,
    )
    return _created(name, blob.digest)


def _repo_or_unknown(name: str) -> Repository:
    try:
        return repository_get(name)
    except RegistryError:
        raise RegistryError("BLOB_UPLOAD_UNKNOWN") from None

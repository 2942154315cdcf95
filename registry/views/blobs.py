"""GET, HEAD and DELETE of blobs; downloads use sendfile or a redirect to the store."""

from __future__ import annotations

import re

from django.db import transaction
from django.http import (
    FileResponse,
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    StreamingHttpResponse,
)

import audit
from hub import metrics
from registry import access, reads
from registry.errors import RegistryError
from registry.models import RepositoryBlob
from registry.names import check_digest, check_name
from registry.services.gc import touch_blob
from registry.services.repositories import repository_get
from registry.storage import StorageError, get_storage
from registry.views.base import registry_view

_RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")


def _blob_size(name: str, digest: str) -> int:
    row = reads.blob_row(repository_name=name, digest=digest)
    # A client that finds the blob here may reference it next: keep it from collection.
    if row is None or not touch_blob(row.id, row.last_referenced_at):
        raise RegistryError("BLOB_UNKNOWN", detail={"digest": digest})
    return row.size


def _parse_range(header: str, size: int) -> tuple[int, int] | None:
    """(start, end) inclusive for a single `bytes=` range; None to send the whole blob."""
    match = _RANGE_RE.match(header.strip())
    if not match or (not match.group(1) and not match.group(2)):
        return None  # unknown units or syntax: RFC 9110 says ignore the header
    first, last = match.group(1), match.group(2)
    if first:
        start = int(first)
        end = min(int(last), size - 1) if last else size - 1
        if last and int(last) < start:
            return None
    else:
        suffix = int(last)
        if suffix == 0:
            raise _unsatisfiable(size)
        start, end = max(size - suffix, 0), size - 1
    if start >= size:
        raise _unsatisfiable(size)
    return start, end


def _unsatisfiable(size: int) -> RegistryError:
    return RegistryError(
        "BLOB_UNKNOWN",
        "requested range not satisfiable",
        status=416,
        headers={"Content-Range": f"bytes */{size}"},
    )


@registry_view("GET", "DELETE")
def blob(request: HttpRequest, name: str, digest: str) -> HttpResponseBase:
    check_name(name)
    parsed = str(check_digest(digest))
    if request.method == "DELETE":
        return _delete(request, name, parsed)
    access.require(
        request, name, "pull", hidden=RegistryError("BLOB_UNKNOWN", detail={"digest": parsed})
    )
    size = _blob_size(name, parsed)
    headers = {
        "Docker-Content-Digest": parsed,
        "Accept-Ranges": "bytes",
        "Cache-Control": "max-age=31536000",
        "ETag": f'"{parsed}"',
    }
    if request.method == "HEAD":
        head = HttpResponse(status=200, content_type="application/octet-stream", headers=headers)
        head["Content-Length"] = str(size)
        return head
    return _download(request, parsed, size, headers)


def _download(
    request: HttpRequest, digest: str, size: int, headers: dict[str, str]
) -> HttpResponseBase:
    storage = get_storage()
    redirect = storage.blob_redirect_url(digest)
    if redirect is not None:
        return HttpResponse(status=307, headers={**headers, "Location": redirect})
    raw_range = request.META.get("HTTP_RANGE")
    byte_range = _parse_range(raw_range, size) if raw_range else None
    response: HttpResponseBase
    if byte_range is not None and byte_range != (0, size - 1):
        start, end = byte_range
        response = StreamingHttpResponse(
            storage.blob_read(digest, start, end),
            status=206,
            content_type="application/octet-stream",
            headers={**headers, "Content-Range": f"bytes {start}-{end}/{size}"},
        )
        response["Content-Length"] = str(end - start + 1)
        metrics.BYTES_PULLED.inc(end - start + 1)
        return response
    path = storage.blob_path(digest)
    if path is not None:
        try:
            blob_file = open(path, "rb")  # noqa: SIM115 - FileResponse closes it
        except FileNotFoundError:
            raise StorageError(f"blob {digest} is missing from the store") from None
        # FileResponse goes out through wsgi.file_wrapper: gunicorn uses sendfile.
        response = FileResponse(blob_file, content_type="application/octet-stream", headers=headers)
    else:
        response = StreamingHttpResponse(
            storage.blob_read(digest), content_type="application/octet-stream", headers=headers
        )
    response["Content-Length"] = str(size)
    # Counted when the body is handed to the server (a client that hangs up early is
    # counted in full): a wrapper around the body would cost sendfile.
    metrics.BYTES_PULLED.inc(size)
    return response


def _delete(request: HttpRequest, name: str, digest: str) -> HttpResponse:
    access.require(
        request, name, "delete", hidden=RegistryError("NAME_UNKNOWN", detail={"name": name})
    )
    repository = repository_get(name)
    with transaction.atomic():
        links = RepositoryBlob.objects.filter(repository=repository, blob__digest=digest)
        deleted, _ = links.delete()
        if deleted:
            audit.record(action="blob.delete", repository=name, digest=digest)
    if not deleted:
        raise RegistryError("BLOB_UNKNOWN", detail={"digest": digest})
    # The bytes stay in the store until garbage collection finds no repository links them.
    return HttpResponse(status=202, headers={"Docker-Content-Digest": digest})

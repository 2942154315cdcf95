"""Reading request bodies in bounded chunks, straight from wsgi.input.

Django's request.body/read() would buffer, and Django sees no body at all when
docker sends `Transfer-Encoding: chunked` without a Content-Length; gunicorn
has already un-chunked wsgi.input, so we read it until it ends.
"""

from __future__ import annotations

from collections.abc import Iterator

from django.http import HttpRequest

from registry.errors import RegistryError

CHUNK_SIZE = 1024 * 1024


class IncompleteBody(Exception):
    """The client sent fewer bytes than its Content-Length announced."""


def declared_length(request: HttpRequest) -> int | None:
    """Content-Length as a number; None when the body is chunked or absent."""
    raw = request.META.get("CONTENT_LENGTH")
    if raw in (None, ""):
        return None
    try:
        length = int(raw)
    except ValueError:
        raise RegistryError("SIZE_INVALID", "invalid Content-Length") from None
    if length < 0:
        raise RegistryError("SIZE_INVALID", "invalid Content-Length")
    return length


def is_chunked(request: HttpRequest) -> bool:
    return "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower()


def has_body(request: HttpRequest) -> bool:
    length = declared_length(request)
    return bool(length) or (length is None and is_chunked(request))


def body_chunks(request: HttpRequest, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
    stream = request.META["wsgi.input"]
    length = declared_length(request)
    if length is not None:
        remaining = length
        while remaining > 0:
            chunk = stream.read(min(chunk_size, remaining))
            if not chunk:
                raise IncompleteBody(f"body ended {remaining} bytes short of Content-Length")
            remaining -= len(chunk)
            yield chunk
    elif is_chunked(request):
        while chunk := stream.read(chunk_size):
            yield chunk

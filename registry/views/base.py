"""What every /v2/ view shares: spec errors, the API version header, no CSRF."""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.views.decorators.csrf import csrf_exempt

import audit
from accounts.request_auth import (
    TooManyAttempts,
    Unauthenticated,
    actor_from_request,
    parse_basic,
)
from audit.context import set_actor as set_audit_actor
from registry import access
from registry.errors import RegistryError, error_response
from registry.storage import StorageError
from registry.streams import IncompleteBody

log = logging.getLogger(__name__)

API_VERSION = ("Docker-Distribution-API-Version", "registry/2.0")

View = Callable[..., HttpResponseBase]


def registry_view(*methods: str) -> Callable[[View], View]:
    """Answer RegistryError (and any store failure) in the spec's JSON format."""
    allowed = set(methods)
    if "GET" in allowed:
        allowed.add("HEAD")

    def decorate(view: View) -> View:
        @csrf_exempt
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            try:
                if request.method not in allowed:
                    raise RegistryError(
                        "UNSUPPORTED",
                        f"{request.method} is not allowed here",
                        status=405,
                        headers={"Allow": ", ".join(sorted(allowed))},
                    )
                request.actor = actor_from_request(request)  # type: ignore[attr-defined]
                set_audit_actor(request.actor)  # type: ignore[attr-defined]
                response = view(request, *args, **kwargs)
            except Unauthenticated as exc:
                _credentials_refused(request, kwargs, 401, str(exc))
                response = error_response(access.unauthorized(request))
                response.content = json.dumps(
                    {"errors": [{"code": "UNAUTHORIZED", "message": str(exc)}]}
                ).encode()
            except TooManyAttempts as exc:
                _credentials_refused(request, kwargs, 429, str(exc))
                response = error_response(RegistryError("TOOMANYREQUESTS", str(exc)))
            except RegistryError as exc:
                response = error_response(exc)
                if request.method == "HEAD":
                    response.content = b""
            except IncompleteBody as exc:
                response = error_response(RegistryError("SIZE_INVALID", str(exc)))
            except (StorageError, OSError) as exc:
                # The store failed (or the disk is full): the session keeps its last good
                # state, and the client is told to retry rather than shown a 500.
                log.exception("storage failure")
                reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
                response = error_response(
                    RegistryError("UNSUPPORTED", f"storage unavailable: {reason}", status=503)
                )
                response["Retry-After"] = "5"
            response[API_VERSION[0]] = API_VERSION[1]
            if not response.streaming and not response.has_header("Content-Length"):
                response["Content-Length"] = str(len(response.content))  # type: ignore[attr-defined]
            _drain_unread_body(request)
            return response

        return wrapper

    return decorate


def _credentials_refused(
    request: HttpRequest, kwargs: dict[str, Any], status: int, reason: str
) -> None:
    """Credentials were sent and refused: the audit trail keeps who claimed to be whom."""
    username = ""
    scheme, _, value = str(request.META.get("HTTP_AUTHORIZATION", "")).partition(" ")
    if scheme.lower() == "basic":
        try:
            username = parse_basic(value)[0][:150]
        except Unauthenticated:
            pass
    audit.record(
        action="request.denied",
        outcome="failure" if status == 401 else "denied",
        repository=kwargs.get("name"),
        details={
            "method": request.method,
            "path": request.path[:300],
            "status": status,
            "reason": reason[:300],
            "username": username,
        },
        request=request,
    )


DRAIN_MAX = 16 * 1024 * 1024


def _drain_unread_body(request: HttpRequest) -> None:
    """Read what is left of a body we answered without reading (a refusal, say).

    Left unread, it stops the server from keeping the connection: the client, told
    keep-alive, would send its next request into a closed socket. Beyond DRAIN_MAX the
    server gives up on the connection itself.
    """
    if "gunicorn.socket" not in request.META:
        return
    stream = request.META["wsgi.input"]
    left = DRAIN_MAX
    while left > 0:
        chunk = stream.read(min(64 * 1024, left))
        if not chunk:
            return
        left -= len(chunk)


def json_response(
    data: Any, *, status: int = 200, content_type: str = "application/json"
) -> HttpResponse:
    return JsonResponse(data, status=status, content_type=content_type, safe=False)


@registry_view("GET")
def base(request: HttpRequest) -> HttpResponse:
    if access.actor_of(request).is_anonymous:
        # Clients (docker login included) learn here where to get a token.
        raise access.unauthorized(request)
    return json_response({})


@registry_view("GET", "POST", "PUT", "PATCH", "DELETE")
def not_found(request: HttpRequest, path: str = "") -> HttpResponse:
    raise RegistryError("UNSUPPORTED", "no such endpoint", status=404, detail={"path": path[:300]})

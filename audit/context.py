"""The request an event is recorded for: who, from where, with which request id.

A middleware keeps it in a context variable for the length of each request;
registry_view adds the actor once it knows it, so deep service code can record
events without passing the request around.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest, HttpResponseBase

from hub.net import client_address
from teams.permissions import Actor

_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:@/+=-]{1,128}$")


@dataclass
class RequestContext:
    request: HttpRequest | None
    request_id: str
    client_address: str
    user_agent: str
    actor: Actor | None = None


_current: ContextVar[RequestContext | None] = ContextVar("audit_request", default=None)


def current() -> RequestContext | None:
    return _current.get()


# Details every event recorded in a block shares (e.g. the configuration document an
# apply comes from), so service code records them without a parameter for each.
_extra_details: ContextVar[dict[str, Any] | None] = ContextVar("audit_details", default=None)


def extra_details() -> dict[str, Any] | None:
    return _extra_details.get()


@contextmanager
def details_added(**values: Any) -> Iterator[None]:
    """Add these details to every event recorded inside the block."""
    token = _extra_details.set({**(_extra_details.get() or {}), **values})
    try:
        yield
    finally:
        _extra_details.reset(token)


@contextmanager
def acting_as(actor: Actor, *, user_agent: str = "") -> Iterator[RequestContext]:
    """Outside a request (a command): record events as done by this actor."""
    ctx = RequestContext(
        request=None,
        request_id=uuid.uuid4().hex,
        client_address="",
        user_agent=user_agent[:512],
        actor=actor,
    )
    token = _current.set(ctx)
    try:
        yield ctx
    finally:
        _current.reset(token)


def request_id_for(request: HttpRequest) -> str:
    # META rather than request.headers: that builds a dict of every header, per request.
    given = str(request.META.get("HTTP_X_REQUEST_ID", "")).strip()
    return given if _REQUEST_ID_RE.match(given) else uuid.uuid4().hex


def context_for(request: HttpRequest) -> RequestContext:
    existing = getattr(request, "audit_context", None)
    if isinstance(existing, RequestContext):
        return existing
    return RequestContext(
        request=request,
        request_id=request_id_for(request),
        client_address=client_address(request)[:64],
        user_agent=str(request.META.get("HTTP_USER_AGENT", ""))[:512],
    )


def set_actor(actor: Actor) -> None:
    """The request's actor is now known (registry_view, the token endpoint)."""
    ctx = _current.get()
    if ctx is not None:
        ctx.actor = actor


class AuditContextMiddleware:
    """Sets the context for the request and answers with its X-Request-ID."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        ctx = context_for(request)
        request.audit_context = ctx  # type: ignore[attr-defined]
        # The WSGI environ (META) outlives the response: gunicorn's access line reads it.
        request.META["hub.request_id"] = ctx.request_id
        token = _current.set(ctx)
        try:
            response = self.get_response(request)
        finally:
            _current.reset(token)
        response["X-Request-ID"] = ctx.request_id
        if str(request.META.get("SERVER_SOFTWARE", "")).startswith("gunicorn"):
            from audit.sealing import ensure_sealer

            ensure_sealer()
        return response


def actor_from_django_request(request: Any) -> Actor | None:
    """The actor DRF or the session left on a request, if any."""
    auth = getattr(request, "auth", None)
    if isinstance(auth, Actor):
        return auth
    actor = getattr(request, "actor", None)
    if isinstance(actor, Actor):
        return actor
    user = getattr(request, "user", None)
    if user is not None and getattr(user, "is_authenticated", False) and getattr(user, "pk", None):
        return Actor(user=user, method="session")
    return None

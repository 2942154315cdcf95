"""audit.record: one INSERT in the caller's transaction (so a failed change leaves no event)."""

from __future__ import annotations

import json
import time
from typing import Any

from django.http import HttpRequest
from django.utils import timezone

from audit.context import (
    RequestContext,
    actor_from_django_request,
    context_for,
    current,
    extra_details,
)
from audit.models import Event
from teams.permissions import Actor

# Whose a namespace is, remembered briefly: every pull records an event, and a name
# changes owner only when an organisation or user is deleted and the name reused.
_NAMESPACE_TTL = 30.0
_UNKNOWN_TTL = 5.0
_namespaces: dict[str, tuple[float, str]] = {}


def _namespace_kind(name: str) -> str:
    now = time.monotonic()
    known = _namespaces.get(name)
    if known is not None and known[0] > now:
        return known[1]
    from teams.models import Namespace

    row = Namespace.objects.filter(name=name).values_list("organisation_id", "user_id").first()
    kind = "" if row is None else ("org" if row[0] is not None else "user")
    # An unknown name may be taken any moment, so it is remembered only briefly: its
    # repositories' events go to the site chain until then (nothing is lost or hidden).
    ttl = _NAMESPACE_TTL if kind else _UNKNOWN_TTL
    if len(_namespaces) > 10_000:
        _namespaces.clear()
    _namespaces[name] = (now + ttl, kind)
    return kind


def forget_namespaces() -> None:
    _namespaces.clear()


def chain_for(organisation: str | None, repository: str | None) -> tuple[str, str]:
    """(chain, organisation name) for an event about this organisation or repository."""
    if organisation:
        return f"org:{organisation}", organisation
    if repository:
        head, sep, _ = repository.partition("/")
        kind = _namespace_kind(head) if sep else ""
        if kind == "org":
            return f"org:{head}", head
        if kind == "user":
            return f"user:{head}", ""
    return "site", ""


def actor_fields(actor: Actor | None, ctx: RequestContext | object | None) -> dict[str, Any]:
    """The actor's columns; `ctx` is None outside a request (or anything truthy inside)."""
    if actor is None:
        # Not in a request at all: a command or a background job.
        name = "anonymous" if ctx is not None else "system"
        return {
            "actor_kind": "anonymous",
            "actor_id": "",
            "actor_name": name,
            "auth_method": "anonymous",
            "token_id": None,
        }
    # A bearer actor carries the id of the access token its JWT was issued for.
    token_id = actor.token.pk if actor.token is not None else actor.token_id
    if actor.robot is not None:
        kind, pk, name = "robot", str(actor.robot.pk), actor.robot.username
    elif actor.user is not None:
        kind, pk, name = "user", str(actor.user.pk), str(actor.user.username)
    elif actor.subject_key:
        kind, _, pk = actor.subject_key.partition(":")
        name = actor.subject_name
    else:
        kind, pk, name = "anonymous", "", "anonymous"
    return {
        "actor_kind": kind if kind in ("user", "robot", "operator") else "anonymous",
        "actor_id": pk[:64],
        "actor_name": name[:200],
        "auth_method": actor.method,
        "token_id": token_id,
    }


def _jsonable(details: dict[str, Any] | None) -> dict[str, Any]:
    if not details:
        return {}  # most events, every pull: no encoder to make
    return json.loads(json.dumps(details, default=str))  # type: ignore[no-any-return]


def build(**kwargs: Any) -> Event:
    """The event, filled from the arguments and the request context, not yet saved."""
    return Event(**values(**kwargs))


def values(
    *,
    action: str,
    outcome: str = "success",
    repository: str | None = None,
    tag: str | None = None,
    digest: str | None = None,
    organisation: str | None = None,
    details: dict[str, Any] | None = None,
    actor: Actor | None = None,
    request: HttpRequest | None = None,
) -> dict[str, Any]:
    """An event's fields (by attname) from the arguments and the request context: what
    build() makes an Event of, and what the pull queue keeps (no model instance)."""
    ctx = current()
    if request is not None and (ctx is None or ctx.request is not request):
        ctx = context_for(request)
    if actor is None and ctx is not None:
        actor = ctx.actor or actor_from_django_request(ctx.request)
    chain, org_name = chain_for(organisation, repository)
    extra = extra_details()
    if extra:
        details = {**(details or {}), **extra}
    return {
        "occurred_at": timezone.now(),
        "chain": chain,
        **actor_fields(actor, ctx),
        "client_address": ctx.client_address if ctx else "",
        "user_agent": ctx.user_agent if ctx else "",
        "request_id": ctx.request_id if ctx else "",
        "action": action,
        "outcome": outcome,
        "organisation": org_name,
        "repository": (repository or "")[:255],
        "tag": (tag or "")[:128],
        "digest": (digest or "")[:200],
        "details": _jsonable(details),
    }


def record(**kwargs: Any) -> Event:
    event = build(**kwargs)
    event.save(force_insert=True)
    return event

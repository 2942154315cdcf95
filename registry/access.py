"""Where the registry asks who may do what (teams.permissions decides).

Refusals follow the token auth spec and never reveal a private name: nobody
signed in (or a token lacking the scope) gets 401 with a challenge saying which
scope to ask for; an actor who may read the repository but not do this gets
403 DENIED; an actor who may not even read it gets exactly what a repository
that does not exist would give them.
"""

from __future__ import annotations

from django.http import HttpRequest

import audit
from accounts.request_auth import as_subject, challenge
from registry.errors import RegistryError
from teams.permissions import ANONYMOUS, Actor, allowed_actions, repository_for

# What each action asks the token endpoint for (docker asks pull,push to push).
_SCOPE_ACTIONS = {"pull": "pull", "push": "pull,push", "delete": "delete"}


def actor_of(request: HttpRequest) -> Actor:
    return getattr(request, "actor", ANONYMOUS)


def unauthorized(request: HttpRequest, scope: str | None = None) -> RegistryError:
    return RegistryError(
        "UNAUTHORIZED",
        "authentication required" if scope is None else f"authentication required for {scope}",
        headers={"WWW-Authenticate": challenge(request, scope)},
    )


def require(request: HttpRequest, name: str, action: str, *, hidden: RegistryError) -> None:
    """Go on only if the actor may take `action` on repository `name`.

    `hidden` is what the view answers when the repository does not exist; an actor
    who may not read the repository gets the same.
    """
    actor = actor_of(request)
    scope = f"repository:{name}:{_SCOPE_ACTIONS[action]}"
    if actor.granted is not None:  # a bearer token: exactly what it holds
        held = actor.granted.get(name, frozenset())
        if action in held:
            return
        if actor.is_anonymous or "pull" not in held:
            raise refused(request, name, action, unauthorized(request, scope))
        # The token may read. If its holder may do this too, the token merely lacks the
        # scope: challenge, so the client asks for it (distribution's insufficient_scope).
        if action in allowed_actions(as_subject(actor), name):
            raise refused(request, name, action, unauthorized(request, scope))
        raise refused(
            request, name, action, RegistryError("DENIED", f"you may not {action} {name}")
        )
    repository = repository_for(actor, name)
    actions = allowed_actions(actor, name, repository=repository)
    if action in actions:
        return
    if actor.is_anonymous:
        raise refused(request, name, action, unauthorized(request, scope))
    if repository is not None and "pull" in actions:
        raise refused(
            request, name, action, RegistryError("DENIED", f"you may not {action} {name}")
        )
    raise refused(request, name, action, hidden)


def refused(request: HttpRequest, name: str, action: str, error: RegistryError) -> RegistryError:
    """Record a refusal in the audit trail (unless nobody sent credentials); returns it."""
    if request.META.get("HTTP_AUTHORIZATION"):
        audit.record(
            action="request.denied",
            outcome="denied",
            repository=name,
            details={
                "attempted": action,
                "method": request.method,
                "path": request.path[:300],
                "status": error.status,
                "code": error.code,
            },
            request=request,
        )
    return error


def may_read(request: HttpRequest, name: str) -> bool:
    return "pull" in allowed_actions(actor_of(request), name)


def readable(request: HttpRequest, name: str) -> bool:
    """For answers that stay 200 when the repository is unknown (referrers): whether the
    actor may read it, after asking an anonymous caller to authenticate."""
    try:
        require(request, name, "pull", hidden=RegistryError("NAME_UNKNOWN"))
    except RegistryError as exc:
        if exc.code == "UNAUTHORIZED":
            raise
        return False
    return True

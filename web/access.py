"""The web UI's lookups: each asks teams.permissions, and what the viewer may not see is
answered exactly like what does not exist (Http404), so names do not leak."""

from __future__ import annotations

from typing import Any

from django.http import Http404, HttpRequest

from registry.models import Repository
from teams.models import Level, Namespace, Organisation, Team
from teams.permissions import (
    ANONYMOUS,
    Actor,
    may_see_organisation,
    organisation_role,
    repository_for,
    repository_level,
    visible_repositories,
)


def actor_of(request: HttpRequest) -> Actor:
    """The signed-in person (a session), or nobody."""
    user: Any = getattr(request, "user", None)
    if user is not None and user.is_authenticated and user.is_active:
        return Actor(user=user, method="session")
    return ANONYMOUS


def readable_repository(actor: Actor, name: str) -> tuple[Repository, Level]:
    """The repository and the viewer's level on it; 404 unless the viewer may pull it."""
    repository = repository_for(actor, name)
    if repository is None:
        raise Http404("no such repository")
    level = repository_level(actor, repository)
    if level < Level.READ:
        raise Http404("no such repository")
    return repository, level


def visible_namespace(actor: Actor, name: str) -> Namespace:
    """A namespace is shown to its owner, its organisation's members, and whoever may see
    at least one repository in it; to anyone else it does not exist."""
    namespace = Namespace.objects.select_related("organisation", "user").filter(name=name).first()
    if namespace is None:
        raise Http404("no such namespace")
    if is_home_of(actor, namespace):
        return namespace
    if visible_repositories(actor).filter(namespace=namespace).exists():
        return namespace
    raise Http404("no such namespace")


def is_home_of(actor: Actor, namespace: Namespace) -> bool:
    """The viewer owns the namespace, or belongs to the organisation that does."""
    if actor.user is None:
        return False
    if namespace.user_id is not None:
        return bool(namespace.user_id == actor.user.pk or actor.is_superuser)
    assert namespace.organisation is not None  # noqa: S101 - the namespace_one_owner constraint
    return organisation_role(actor, namespace.organisation) is not None


def may_see_activity(actor: Actor, repository: Repository) -> bool:
    """Who pushed what, and when, is shown to those who read the repository and belong
    to its namespace (as /api/orgs/<org>/activity/ does for organisations)."""
    namespace = repository.namespace
    if actor.is_superuser:
        return True
    return namespace is not None and is_home_of(actor, namespace)


def visible_organisation(actor: Actor, name: str) -> Organisation:
    organisation = Organisation.objects.filter(name=name).first()
    if organisation is None or not may_see_organisation(actor, organisation):
        raise Http404("no such organisation")
    return organisation


def visible_team(actor: Actor, organisation: Organisation, name: str) -> Team:
    team = (
        Team.objects.select_related("organisation")
        .filter(organisation=organisation, name=name)
        .first()
    )
    if team is None:
        raise Http404("no such team")
    return team

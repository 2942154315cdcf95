"""Read-side queries of the web UI, each built on teams.permissions or audit.queries."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, OuterRef, Q, QuerySet, Subquery, Sum

from audit.models import Event
from audit.queries import ACTIVITY_ACTIONS, organisation_activity, visible_events
from registry.models import Repository, RepositoryBlob, Tag
from teams import permissions
from teams.models import Organisation
from teams.permissions import Actor, organisation_role, visible_repositories

TAG_ACTIONS = ("manifest.push", "tag.move", "tag.delete", "manifest.delete")


def with_summary(repositories: QuerySet[Repository]) -> QuerySet[Any]:
    """Each repository with its last push, stored size and tag count (its pull_count is a
    column, counted in batches as audit.pulls writes the pulls)."""
    last_push = (
        Tag.objects.filter(repository=OuterRef("pk")).order_by("-updated_at").values("updated_at")
    )
    size = (
        RepositoryBlob.objects.filter(repository=OuterRef("pk"))
        .values("repository")
        .annotate(total=Sum("blob__size"))
        .values("total")
    )
    tags = (
        Tag.objects.filter(repository=OuterRef("pk"))
        .values("repository")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return repositories.annotate(
        last_push=Subquery(last_push[:1]),
        stored_size=Subquery(size),
        tag_count=Subquery(tags),
    )


def search(actor: Actor, query: str) -> QuerySet[Repository]:
    found = visible_repositories(actor)
    if query:
        found = found.filter(Q(name__icontains=query) | Q(description__icontains=query))
    return found


def member_organisations(actor: Actor) -> list[Organisation]:
    return list(permissions.member_organisations(actor).order_by("name"))


def home_repositories(actor: Actor, organisations: list[Organisation]) -> QuerySet[Repository]:
    """What the viewer may see in their own namespace and their organisations'."""
    if actor.user is None:
        return visible_repositories(actor).none()
    return visible_repositories(actor).filter(
        Q(namespace__user=actor.user) | Q(namespace__organisation__in=organisations)
    )


def home_activity(actor: Actor, organisations: list[Organisation]) -> QuerySet[Event]:
    """Pushes, tag moves and membership changes in the viewer's namespace and organisations."""
    if actor.user is None:
        return Event.objects.none()
    events = visible_events(actor).filter(
        chain=f"user:{actor.user.username}", action__in=ACTIVITY_ACTIONS, outcome="success"
    )
    for organisation in organisations:
        events = events | organisation_activity(actor, organisation)
    return events


def repository_activity(actor: Actor, repository: Repository) -> QuerySet[Event]:
    """Tag and manifest changes of a repository, as far as the viewer may read them:
    members see their organisation's activity, everyone the events they may read."""
    namespace = repository.namespace
    organisation = namespace.organisation if namespace is not None else None
    base: QuerySet[Event]
    if organisation is not None and organisation_role(actor, organisation) is not None:
        base = organisation_activity(actor, organisation) | visible_events(actor).filter(
            organisation=organisation.name
        )
    else:
        base = visible_events(actor)
    return base.filter(repository=repository.name, action__in=TAG_ACTIONS, outcome="success")


def pushers(activity: QuerySet[Event], tags: list[str]) -> dict[str, Any]:
    """The newest push event naming each of these tags, among `activity`
    (a `repository_activity`, built once per page: building it asks the database)."""
    found: dict[str, Any] = {}
    events = (
        activity.filter(action="manifest.push", tag__in=tags)
        .order_by("-id")
        .only("tag", "actor_name", "occurred_at")[:1000]
    )
    for event in events:
        found.setdefault(event.tag, event)
    return found

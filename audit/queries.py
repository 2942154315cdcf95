"""Which events an actor may read, and the filters the API and `hub audit export` share.

Site administrators read everything; an organisation's owners read their organisation's
events; everybody reads their own namespace's events and their own sign-ins and tokens.
What an actor may do is decided in teams.permissions, as everywhere else.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from django.db.models import Q, QuerySet
from django.utils.dateparse import parse_datetime

from audit.models import Event
from teams.models import Membership, Organisation
from teams.permissions import Actor, may_manage_organisation, visible_repositories

FILTERS = (
    "since",
    "until",
    "actor",
    "action",
    "organisation",
    "repository",
    "outcome",
    "client_address",
)

# What /api/orgs/<org>/activity/ shows every member.
ACTIVITY_ACTIONS = (
    "manifest.push",
    "tag.move",
    "member.set",
    "member.remove",
    "team_member.set",
    "team_member.remove",
)


class BadFilter(ValueError):
    pass


def owned_organisations(actor: Actor) -> list[str]:
    if actor.user is None:
        return []
    candidates = Organisation.objects.filter(
        memberships__user=actor.user, memberships__role=Membership.Role.OWNER
    ).order_by("name")
    return [org.name for org in candidates if may_manage_organisation(actor, org)]


def visible_events(actor: Actor) -> QuerySet[Event]:
    events = Event.objects.all()
    if actor.is_superuser and actor.token is None and actor.granted is None:
        return events
    if actor.user is None or actor.granted is not None:
        return events.none()
    own = Q(chain=f"user:{actor.user.username}") | Q(
        chain="site", actor_kind="user", actor_id=str(actor.user.pk)
    )
    owned = owned_organisations(actor)
    return events.filter(own | Q(organisation__in=owned)) if owned else events.filter(own)


def organisation_activity(actor: Actor, organisation: Organisation) -> QuerySet[Event]:
    """Pushes, tag moves and membership changes, about what the member may see."""
    visible = visible_repositories(actor).values("name")
    return Event.objects.filter(
        organisation=organisation.name, action__in=ACTIVITY_ACTIONS, outcome="success"
    ).filter(Q(repository="") | Q(repository__in=visible))


def _when(value: str, name: str) -> datetime:
    parsed = parse_datetime(value)
    if parsed is None:
        raise BadFilter(f"{name} must be an ISO 8601 date and time")
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def whole_chains(params: Mapping[str, Any]) -> list[str] | None:
    """The chains an organisation filter keeps: an organisation's events are exactly its
    chain's (audit.recording.chain_for), so an export need look at no other."""
    name = str(params.get("organisation") or "").strip()
    return [f"org:{name}"] if name else None


def apply_filters(events: QuerySet[Event], params: Mapping[str, Any]) -> QuerySet[Event]:
    def given(name: str) -> str:
        value = params.get(name)
        return str(value).strip() if value else ""

    if given("since"):
        events = events.filter(occurred_at__gte=_when(given("since"), "since"))
    if given("until"):
        events = events.filter(occurred_at__lt=_when(given("until"), "until"))
    if given("actor"):
        events = events.filter(actor_name=given("actor"))
    if given("action"):
        action = given("action")
        if action.endswith(".*"):
            events = events.filter(action__startswith=action[:-1])
        else:
            events = events.filter(action=action)
    for name in ("organisation", "repository", "outcome", "client_address"):
        if given(name):
            events = events.filter(**{name: given(name)})
    return events

"""What every management API view needs: the actor, and lookups that ask teams.permissions.

A lookup either returns what the actor may see or raises NotFound with the same
message as for something that does not exist, so names do not leak; a thing the
actor may see but not change raises PermissionDenied (403).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from rest_framework.exceptions import (
    APIException,
    NotAuthenticated,
    NotFound,
    PermissionDenied,
    ValidationError,
)
from rest_framework.generics import GenericAPIView
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.api_auth import api_actor
from teams.models import Level, Organisation, Team
from teams.permissions import (
    Actor,
    may_manage_organisation,
    may_manage_team,
    may_see_organisation,
)

LEVELS: dict[str, Level] = {"read": Level.READ, "write": Level.WRITE, "admin": Level.ADMIN}
LEVEL_NAMES = list(LEVELS)


def level_name(level: int) -> str:
    return str(Level(level).label)


class ReadOnlyForAnyone(BasePermission):
    """Anyone may read (the view filters what); writing needs a signed-in actor."""

    def has_permission(self, request: Request, view: Any) -> bool:
        if request.method in SAFE_METHODS:
            return True
        return bool(request.user and request.user.is_authenticated)


def is_person(actor: Actor) -> bool:
    """A user signed in with a password or a session: no robot, no token, no bearer grant."""
    return (
        actor.user is not None
        and actor.robot is None
        and actor.token is None
        and actor.granted is None
        and bool(actor.user.is_active)
    )


def person(request: Request) -> Actor:
    """The actor, who must be a person: organisations and tokens are managed by people."""
    actor = api_actor(request)
    if actor.is_anonymous:
        raise NotAuthenticated()
    if not is_person(actor):
        raise PermissionDenied(
            "this needs a person signed in with a password or a session; "
            "robots and access tokens may not use it"
        )
    return actor


def visible_organisation(actor: Actor, name: str) -> Organisation:
    organisation = Organisation.objects.filter(name=name).first()
    if organisation is None or not may_see_organisation(actor, organisation):
        raise NotFound(f"no organisation named {name!r}")
    return organisation


def managed_organisation(actor: Actor, name: str) -> Organisation:
    organisation = visible_organisation(actor, name)
    if not may_manage_organisation(actor, organisation):
        raise PermissionDenied(f"only owners of {organisation.name} may do this")
    return organisation


def visible_team(actor: Actor, organisation: Organisation, name: str) -> Team:
    team = (
        Team.objects.select_related("organisation")
        .filter(organisation=organisation, name=name)
        .first()
    )
    if team is None:
        raise NotFound(f"{organisation.name} has no team named {name!r}")
    return team


def managed_team(actor: Actor, organisation: Organisation, name: str) -> Team:
    team = visible_team(actor, organisation, name)
    if not may_manage_team(actor, team):
        raise PermissionDenied(
            f"only owners of {organisation.name} and maintainers of {team.name} may do this"
        )
    return team


def user_named(username: str) -> Any:
    user = get_user_model().objects.filter(username=username, is_active=True).first()
    if user is None:
        raise ValidationError({"username": [f"no user named {username!r}"]})
    return user


class Conflict(APIException):
    status_code = 409
    default_detail = "this conflicts with what is already there"
    default_code = "conflict"


def paginated(view: GenericAPIView, items: Any, serializer: Any) -> Response:
    """One page of items, serialized, in DRF's pagination envelope."""
    page = view.paginate_queryset(items)
    if page is None:
        return Response(serializer(items))
    return view.get_paginated_response(serializer(page))

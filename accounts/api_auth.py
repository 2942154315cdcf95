"""DRF glue: the management API authenticates like the registry and asks the same function."""

from __future__ import annotations

from typing import Any

from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.request import Request

from accounts.request_auth import (
    TooManyAttempts,
    Unauthenticated,
    basic_actor,
    bearer_actor,
    materialize,
    parse_basic,
)
from teams.permissions import ANONYMOUS, Actor


class RobotPrincipal:
    """Stands in for request.user when a robot calls the API."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_superuser = False
    is_staff = False

    def __init__(self, robot: Any) -> None:
        self.robot = robot
        self.pk = None
        self.username = robot.username

    def __str__(self) -> str:
        return str(self.username)


class HubAuthentication(BaseAuthentication):
    """Basic (password, personal token, robot token) or a registry bearer token."""

    def authenticate(self, request: Request) -> tuple[Any, Actor] | None:
        header = get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        scheme, _, value = header.partition(" ")
        try:
            if scheme.lower() == "basic":
                actor = basic_actor(request._request, *parse_basic(value))
            elif scheme.lower() == "bearer":
                actor = materialize(bearer_actor(value.strip()))
            else:
                return None
        except TooManyAttempts as exc:
            raise exceptions.Throttled(detail=str(exc)) from None
        except Unauthenticated as exc:
            raise exceptions.AuthenticationFailed(str(exc)) from None
        if actor.robot is not None:
            return RobotPrincipal(actor.robot), actor
        if actor.user is None:
            raise exceptions.AuthenticationFailed("invalid credentials")
        return actor.user, actor

    def authenticate_header(self, request: Request) -> str:
        return 'Basic realm="Hub"'


def api_actor(request: Request) -> Actor:
    """The actor behind an API request, whichever way it signed in."""
    if isinstance(request.auth, Actor):
        return request.auth
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return Actor(user=user, method="session")
    return ANONYMOUS

"""Who is making a registry request: from a bearer token, Basic credentials, or nobody."""

from __future__ import annotations

import base64
import binascii

from django.conf import settings
from django.http import HttpRequest

from accounts import credentials, jwt_tokens
from hub.net import client_address
from teams.permissions import ANONYMOUS, Actor


class Unauthenticated(Exception):
    """Credentials were sent but are no good."""


class TooManyAttempts(Exception):
    pass


def parse_basic(value: str) -> tuple[str, str]:
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise Unauthenticated("malformed Basic credentials") from None
    username, sep, password = decoded.partition(":")
    if not sep:
        raise Unauthenticated("malformed Basic credentials")
    return username, password


def basic_actor(request: HttpRequest, username: str, password: str) -> Actor:
    try:
        return credentials.authenticate(
            username=username, password=password, address=client_address(request)
        )
    except credentials.RateLimited as exc:
        raise TooManyAttempts(str(exc)) from None
    except credentials.AuthenticationFailed as exc:
        raise Unauthenticated(str(exc)) from None


def bearer_actor(token: str) -> Actor:
    try:
        claims = jwt_tokens.verify(token)
    except jwt_tokens.InvalidToken as exc:
        raise Unauthenticated(f"invalid token: {exc}") from None
    hub = claims.get("hub")
    if not isinstance(hub, dict):
        hub = {}
    token_id = hub.get("tid")
    return Actor(
        method="bearer",
        granted=jwt_tokens.granted_from_claims(claims),
        catalog=jwt_tokens.holds_catalog(claims),
        subject_key=str(hub.get("key") or ""),
        subject_name=str(claims.get("sub") or ""),
        token_id=token_id if isinstance(token_id, int) else None,
    )


def actor_from_request(request: HttpRequest) -> Actor:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if not header:
        return ANONYMOUS
    scheme, _, value = header.partition(" ")
    scheme = scheme.lower()
    if scheme == "bearer" and value:
        return bearer_actor(value.strip())
    if scheme == "basic" and value:
        return basic_actor(request, *parse_basic(value))
    raise Unauthenticated("unsupported Authorization scheme")


def token_realm(request: HttpRequest) -> str:
    base = settings.HUB_PUBLIC_URL or f"{request.scheme}://{request.get_host()}"
    return f"{base}/auth/token"


def challenge(request: HttpRequest, scope: str | None = None) -> str:
    parts = [f'realm="{token_realm(request)}"', f'service="{settings.HUB_TOKEN_SERVICE}"']
    if scope:
        parts.append(f'scope="{scope}"')
    return "Bearer " + ",".join(parts)


def as_subject(actor: Actor) -> Actor:
    """Who a bearer token speaks for, with the rights they hold now (capped by the access
    token they signed in with), rather than what the token itself carries."""
    if actor.granted is None or not actor.subject_key:
        return actor
    loaded = materialize(actor)
    token = None
    if actor.token_id is not None:
        from accounts.models import AccessToken

        token = AccessToken.objects.filter(pk=actor.token_id).select_related("parent").first()
        if token is None or not token.is_active:
            return ANONYMOUS
    return Actor(user=loaded.user, robot=loaded.robot, token=token, method="bearer")


def materialize(actor: Actor) -> Actor:
    """A bearer actor with its user or robot loaded (for the rare places that need them)."""
    if actor.granted is None or not actor.subject_key:
        return actor
    from django.contrib.auth import get_user_model

    from accounts.models import Robot

    kind, _, pk = actor.subject_key.partition(":")
    if kind == "user":
        user = get_user_model().objects.filter(pk=pk, is_active=True).first()
        return Actor(user=user, method="bearer", granted=actor.granted) if user else ANONYMOUS
    if kind == "robot":
        robot = Robot.objects.select_related("organisation").filter(pk=pk).first()
        return Actor(robot=robot, method="bearer", granted=actor.granted) if robot else ANONYMOUS
    return ANONYMOUS

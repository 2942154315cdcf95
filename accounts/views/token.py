"""The docker token endpoint (distribution's token auth spec, GET and OAuth2 POST)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.http import HttpRequest, HttpResponse, QueryDict
from django.views.decorators.csrf import csrf_exempt

import audit
from accounts import jwt_tokens
from accounts.credentials import new_token_secret
from accounts.models import AccessToken, hash_token
from accounts.request_auth import TooManyAttempts, Unauthenticated, basic_actor, parse_basic
from audit.context import set_actor as set_audit_actor
from hub.net import client_address
from registry.names import NAME_RE
from teams.permissions import ALL_ACTIONS, ANONYMOUS, Actor, allowed_actions

MAX_SCOPES = 32


def _error(status: int, code: str, message: str) -> HttpResponse:
    body = {
        "errors": [{"code": code, "message": message}],
        "error": code.lower(),
        "error_description": message,
    }
    return HttpResponse(json.dumps(body), status=status, content_type="application/json")


def parse_scopes(raw: list[str]) -> list[tuple[str, str, frozenset[str]]]:
    """`repository:acme/web:pull,push` (several per parameter, space-separated)."""
    scopes = []
    for item in " ".join(raw).split():
        kind, sep, rest = item.partition(":")
        name, sep2, actions = rest.rpartition(":")
        if not sep or not sep2 or not name:
            continue
        kind = kind.split("(", 1)[0]  # repository(plugin) is a repository
        wanted: set[str] = set()
        for action in actions.split(","):
            wanted |= ALL_ACTIONS if action == "*" else {action}
        scopes.append((kind, name, frozenset(wanted)))
        if len(scopes) >= MAX_SCOPES:
            break
    return scopes


def grant(actor: Actor, scopes: list[tuple[str, str, frozenset[str]]]) -> list[dict[str, Any]]:
    """What was asked, intersected with what the actor may do."""
    access: list[dict[str, Any]] = []
    for kind, name, wanted in scopes:
        if kind == "repository" and NAME_RE.match(name) and len(name) <= 255:
            actions = sorted(wanted & allowed_actions(actor, name))
            access.append({"type": "repository", "name": name, "actions": actions})
        elif kind == "registry" and name == "catalog" and not actor.is_anonymous:
            # The catalog lists only what the caller may see, whoever asks.
            access.append({"type": "registry", "name": "catalog", "actions": ["*"]})
    return access


def _refresh_actor(secret: str) -> Actor:
    token = (
        AccessToken.objects.select_related("user", "robot", "robot__organisation", "parent")
        .filter(secret_hash=hash_token(secret))
        .filter(Q(robot__isnull=True) | Q(robot__disabled_at__isnull=True))
        .first()
    )
    if token is None or not token.is_active:
        raise Unauthenticated("invalid refresh token")
    if token.robot is not None:
        return Actor(robot=token.robot, token=token, method="robot")
    if token.user is None or not token.user.is_active:
        raise Unauthenticated("invalid refresh token")
    return Actor(user=token.user, token=token, method="token")


def _refresh_token_for(actor: Actor, request: HttpRequest, client_id: str) -> str:
    """A revocable token docker keeps instead of the password; never wider than the login:
    a login with an access token gets that token's scopes and expiry (a password login's
    refresh token lasts until it is revoked)."""
    secret = new_token_secret()
    expires_at = None
    if actor.token is not None:
        scopes = actor.token.scopes
        expires_at = actor.token.expires_at
    else:
        scopes = [{"repository": "**", "actions": sorted(ALL_ACTIONS)}]
    with transaction.atomic():
        created = AccessToken.objects.create(
            user=actor.user,
            robot=actor.robot,
            name=f"{client_id or 'docker'} login from {client_address(request)}"[:100],
            prefix=secret[:12],
            secret_hash=hash_token(secret),
            scopes=scopes,
            expires_at=expires_at,
            parent=actor.token,
        )
        audit.record(
            action="token.create",
            actor=actor,
            organisation=actor.robot.organisation.name if actor.robot is not None else None,
            details={
                "token_id": created.pk,
                "name": created.name,
                "prefix": created.prefix,
                "scopes": scopes,
                "owner": actor.name,
                "via": "token endpoint (refresh token)",
            },
        )
    return secret


@csrf_exempt
def token(request: HttpRequest) -> HttpResponse:
    if request.method not in ("GET", "POST"):
        return _error(405, "UNSUPPORTED", "use GET or POST")
    params: QueryDict = request.POST if request.method == "POST" else request.GET
    service = params.get("service")
    if service and service != settings.HUB_TOKEN_SERVICE:
        return _error(400, "UNSUPPORTED", f"unknown service {service[:100]!r}")
    asked = [s[:300] for s in params.getlist("scope")[:MAX_SCOPES]]
    try:
        actor = _actor(request, params)
    except TooManyAttempts as exc:
        _refused(request, params, asked, 429, str(exc))
        return _error(429, "TOOMANYREQUESTS", str(exc))
    except Unauthenticated as exc:
        _refused(request, params, asked, 401, str(exc))
        response = _error(401, "UNAUTHORIZED", str(exc))
        response["WWW-Authenticate"] = 'Basic realm="Hub"'
        return response
    set_audit_actor(actor)
    scopes = parse_scopes(params.getlist("scope"))
    access = grant(actor, scopes)
    jwt, ttl = jwt_tokens.issue(
        subject=actor.name if not actor.is_anonymous else "",
        subject_key=actor.key if not actor.is_anonymous else "",
        audience=settings.HUB_TOKEN_SERVICE,
        access=access,
        auth_method=actor.method,
        token_id=actor.token.pk if actor.token is not None else None,
    )
    body: dict[str, Any] = {
        "token": jwt,
        "access_token": jwt,
        "expires_in": ttl,
        "issued_at": datetime.now(UTC).isoformat(),
    }
    offline = params.get("access_type") == "offline" or params.get("offline_token") == "true"
    if offline and not actor.is_anonymous and params.get("grant_type") != "refresh_token":
        body["refresh_token"] = _refresh_token_for(actor, request, params.get("client_id", ""))
    audit.record(
        action="auth.token_issued",
        actor=actor,
        details={
            "scopes_asked": asked,
            "granted": access,
            "grant_type": params.get("grant_type") or "basic",
            "refresh_token": "refresh_token" in body,
        },
    )
    return HttpResponse(json.dumps(body), content_type="application/json")


def _refused(
    request: HttpRequest, params: QueryDict, asked: list[str], status: int, reason: str
) -> None:
    """Credentials were sent and refused (nothing sent is anonymous, and never refused)."""
    username = params.get("username", "") if request.method == "POST" else ""
    scheme, _, value = str(request.META.get("HTTP_AUTHORIZATION", "")).partition(" ")
    if scheme.lower() == "basic" and value:
        try:
            username = parse_basic(value)[0]
        except Unauthenticated:
            pass
    audit.record(
        action="request.denied",
        outcome="failure" if status == 401 else "denied",
        details={
            "attempted": "auth.token",
            "status": status,
            "reason": reason[:300],
            "username": username[:150],
            "grant_type": params.get("grant_type") or "basic",
            "scopes_asked": asked,
        },
    )


def _actor(request: HttpRequest, params: QueryDict) -> Actor:
    if request.method == "POST":
        grant_type = params.get("grant_type")
        if grant_type == "refresh_token":
            return _refresh_actor(params.get("refresh_token", ""))
        if grant_type == "password":
            return basic_actor(request, params.get("username", ""), params.get("password", ""))
        raise Unauthenticated("grant_type must be password or refresh_token")
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "basic" and value:
        return basic_actor(request, *parse_basic(value))
    if header:
        raise Unauthenticated("the token endpoint takes Basic credentials")
    return ANONYMOUS

"""Writes to robots and access tokens."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

import audit
from accounts.credentials import new_token_secret
from accounts.models import AccessToken, Robot, hash_token
from teams.models import Organisation, namespace_validator
from teams.permissions import ALL_ACTIONS, valid_scope_pattern


def clean_scopes(scopes: Any) -> list[dict[str, Any]]:
    """[{"repository": "acme/*", "actions": ["pull"]}], checked; ValidationError otherwise."""
    if not isinstance(scopes, list) or not scopes:
        raise ValidationError("scopes must be a non-empty list")
    cleaned = []
    for i, scope in enumerate(scopes):
        if not isinstance(scope, dict):
            raise ValidationError(f"scopes[{i}] must be an object")
        pattern, actions = scope.get("repository"), scope.get("actions")
        if not isinstance(pattern, str) or not valid_scope_pattern(pattern):
            raise ValidationError(f"scopes[{i}].repository is not a valid pattern")
        if (
            not isinstance(actions, list)
            or not actions
            or not all(isinstance(a, str) and a in ALL_ACTIONS for a in actions)
        ):
            raise ValidationError(f"scopes[{i}].actions must be some of {sorted(ALL_ACTIONS)}")
        cleaned.append({"repository": pattern, "actions": sorted(set(actions))})
    return cleaned


def token_create(
    *,
    name: str,
    user: Any = None,
    robot: Robot | None = None,
    scopes: Any = None,
    expires_at: datetime | None = None,
) -> tuple[AccessToken, str]:
    """A new token and its secret (shown once; only its hash is kept)."""
    if (user is None) == (robot is None):
        raise ValidationError("a token belongs to a user or a robot")
    if expires_at is not None and expires_at <= timezone.now():
        raise ValidationError("the expiry must be in the future")
    secret = new_token_secret()
    with transaction.atomic():
        token = AccessToken.objects.create(
            user=user,
            robot=robot,
            name=name[:100],
            prefix=secret[:12],
            secret_hash=hash_token(secret),
            scopes=clean_scopes(scopes) if user is not None else [],
            expires_at=expires_at,
        )
        _record_token("token.create", token)
    return token, secret


def _record_token(action: str, token: AccessToken, **extra: Any) -> None:
    robot = token.robot
    audit.record(
        action=action,
        organisation=robot.organisation.name if robot is not None else None,
        details={
            "token_id": token.pk,
            "name": token.name,
            "prefix": token.prefix,
            "owner": robot.username
            if robot is not None
            else str(getattr(token.user, "username", "")),
            "scopes": token.scopes,
            "expires_at": token.expires_at.isoformat() if token.expires_at else None,
            **extra,
        },
    )


def token_revoke(*, token: AccessToken) -> None:
    if token.revoked_at is None:
        with transaction.atomic():
            revoked = AccessToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
                revoked_at=timezone.now()
            )
            token.revoked_at = timezone.now()
            if revoked:
                _record_token("token.revoke", token)


def robot_create(
    *,
    organisation: Organisation,
    name: str,
    created_by: Any = None,
    description: str = "",
    may_create: bool = False,
) -> Robot:
    namespace_validator(name)
    if Robot.objects.filter(organisation=organisation, name=name).exists():
        raise ValidationError(f"{organisation.name} already has a robot named {name!r}")
    with transaction.atomic():
        robot = Robot.objects.create(
            organisation=organisation,
            name=name,
            created_by=created_by,
            description=description,
            may_create_repositories=may_create,
        )
        audit.record(
            action="robot.create",
            organisation=organisation.name,
            details={
                "robot": robot.username,
                "robot_id": robot.pk,
                "description": description,
                "may_create_repositories": may_create,
            },
        )
    return robot


def robot_disable(*, robot: Robot) -> None:
    before = robot.disabled_at
    with transaction.atomic():
        Robot.objects.filter(pk=robot.pk).update(disabled_at=timezone.now())
        robot.disabled_at = timezone.now()
        audit.record(
            action="robot.disable",
            organisation=robot.organisation.name,
            details={
                "robot": robot.username,
                "robot_id": robot.pk,
                "before": {"disabled_at": before.isoformat() if before else None},
                "after": {"disabled_at": robot.disabled_at.isoformat()},
            },
        )


def robot_update(
    *, robot: Robot, description: str | None = None, may_create: bool | None = None
) -> Robot:
    before = {"description": robot.description, "may_create": robot.may_create_repositories}
    if description is not None:
        robot.description = description
    if may_create is not None:
        robot.may_create_repositories = may_create
    with transaction.atomic():
        robot.save(update_fields=["description", "may_create_repositories"])
        audit.record(
            action="robot.update",
            organisation=robot.organisation.name,
            details={
                "robot": robot.username,
                "before": before,
                "after": {
                    "description": robot.description,
                    "may_create": robot.may_create_repositories,
                },
            },
        )
    return robot

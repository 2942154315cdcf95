"""Robot accounts and access tokens (personal and robot)."""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from teams.models import namespace_validator


class Robot(models.Model):
    """A non-human account owned by an organisation, for CI; signs in as `org+name`."""

    organisation = models.ForeignKey(
        "teams.Organisation", on_delete=models.CASCADE, related_name="robots"
    )
    name = models.CharField(max_length=64, validators=[namespace_validator])
    description = models.TextField(blank=True)
    may_create_repositories = models.BooleanField(default=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    disabled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organisation", "name"], name="robot_unique")
        ]

    def __str__(self) -> str:
        return self.username

    @property
    def username(self) -> str:
        return f"{self.organisation.name}+{self.name}"


def hash_token(secret: str) -> str:
    # Tokens are long and random: a fast hash is enough (no dictionary to attack).
    return hashlib.sha256(secret.encode()).hexdigest()


class AccessToken(models.Model):
    """A personal access token (user) or a robot token; the secret is shown once, kept hashed."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="access_tokens",
    )
    robot = models.ForeignKey(
        Robot, null=True, blank=True, on_delete=models.CASCADE, related_name="tokens"
    )
    name = models.CharField(max_length=100)
    # The first characters of the secret, to recognise a token in lists and logs.
    prefix = models.CharField(max_length=16)
    secret_hash = models.CharField(max_length=64, unique=True)
    # [{"repository": "acme/*", "actions": ["pull", "push"]}]; empty for robot tokens,
    # which carry exactly their robot's grants.
    scopes = models.JSONField(default=list, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    # A token made from another (a docker login's refresh token) lives and dies with it.
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="children"
    )

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(user__isnull=False, robot__isnull=True)
                | Q(user__isnull=True, robot__isnull=False),
                name="token_one_owner",
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        now = timezone.now()
        own = self.revoked_at is None and (self.expires_at is None or self.expires_at > now)
        return own and (self.parent is None or self.parent.is_active)

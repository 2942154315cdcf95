"""Organisations, namespaces, teams and the grants that say who may do what with a repository."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q

# A namespace is the first component of a repository name (the spec's grammar).
namespace_validator = RegexValidator(
    r"^(?=.{1,64}$)[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$",
    "Use at most 64 lowercase letters, digits and single separators (. _ -), starting and "
    "ending with a letter or digit.",
)


class Level(models.IntegerChoices):
    """What an actor may do with a repository; each level includes the ones below it."""

    NONE = 0, "none"
    READ = 1, "read"  # pull
    WRITE = 2, "write"  # push, tag
    ADMIN = 3, "admin"  # delete, settings, grants


class Organisation(models.Model):
    name = models.CharField(max_length=64, unique=True, validators=[namespace_validator])
    display_name = models.CharField(max_length=200, blank=True)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # Days its audit events are kept before they are archived and removed: None follows
    # HUB_AUDIT_RETENTION_DAYS, 0 keeps them forever.
    audit_retention_days = models.PositiveIntegerField(null=True, blank=True)

    def __str__(self) -> str:
        return self.name


class Namespace(models.Model):
    """Users and organisations share one space of names; each owns one namespace."""

    name = models.CharField(max_length=64, unique=True, validators=[namespace_validator])
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="namespace",
    )
    organisation = models.OneToOneField(
        Organisation, null=True, blank=True, on_delete=models.CASCADE, related_name="namespace"
    )

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(user__isnull=False, organisation__isnull=True)
                | Q(user__isnull=True, organisation__isnull=False),
                name="namespace_one_owner",
            )
        ]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    class Role(models.TextChoices):
        OWNER = "owner"
        MEMBER = "member"

    organisation = models.ForeignKey(
        Organisation, on_delete=models.CASCADE, related_name="memberships"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organisation", "user"], name="membership_unique")
        ]

    def __str__(self) -> str:
        return f"{self.user_id}@{self.organisation_id}:{self.role}"


class Team(models.Model):
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="teams")
    name = models.CharField(max_length=64, validators=[namespace_validator])
    description = models.TextField(blank=True)
    # Members of such a team may create repositories in the organisation's namespace.
    may_create_repositories = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organisation", "name"], name="team_unique")]

    def __str__(self) -> str:
        return f"{self.organisation_id}/{self.name}"


class TeamMember(models.Model):
    class Role(models.TextChoices):
        MAINTAINER = "maintainer"
        MEMBER = "member"

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="members")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="team_memberships"
    )
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["team", "user"], name="team_member_unique")]

    def __str__(self) -> str:
        return f"{self.user_id}@{self.team_id}:{self.role}"


def _one_subject(prefix: str) -> list[models.BaseConstraint]:
    return [
        models.CheckConstraint(
            condition=Q(user__isnull=False, team__isnull=True, robot__isnull=True)
            | Q(user__isnull=True, team__isnull=False, robot__isnull=True)
            | Q(user__isnull=True, team__isnull=True, robot__isnull=False),
            name=f"{prefix}_one_subject",
        ),
    ]


class RepositoryGrant(models.Model):
    repository = models.ForeignKey(
        "registry.Repository", on_delete=models.CASCADE, related_name="grants"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="repository_grants",
    )
    team = models.ForeignKey(
        Team, null=True, blank=True, on_delete=models.CASCADE, related_name="repository_grants"
    )
    robot = models.ForeignKey(
        "accounts.Robot",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="repository_grants",
    )
    level = models.PositiveSmallIntegerField(choices=Level.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            *_one_subject("grant"),
            models.UniqueConstraint(
                fields=["repository", "user"],
                condition=Q(user__isnull=False),
                name="grant_user_unique",
            ),
            models.UniqueConstraint(
                fields=["repository", "team"],
                condition=Q(team__isnull=False),
                name="grant_team_unique",
            ),
            models.UniqueConstraint(
                fields=["repository", "robot"],
                condition=Q(robot__isnull=False),
                name="grant_robot_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.repository_id}:{self.get_level_display()}"


class DefaultGrant(models.Model):
    """Copied onto every repository created later in the organisation's namespace."""

    organisation = models.ForeignKey(
        Organisation, on_delete=models.CASCADE, related_name="default_grants"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    team = models.ForeignKey(
        Team, null=True, blank=True, on_delete=models.CASCADE, related_name="default_grants"
    )
    robot = models.ForeignKey(
        "accounts.Robot",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="default_grants",
    )
    level = models.PositiveSmallIntegerField(choices=Level.choices)

    class Meta:
        constraints = _one_subject("default_grant")

    def __str__(self) -> str:
        return f"{self.organisation_id}:{self.get_level_display()}"


class OrganisationAdminRobot(models.Model):
    """A robot that may administer its organisation as code (plan and apply its document)."""

    robot = models.OneToOneField(
        "accounts.Robot", on_delete=models.CASCADE, related_name="organisation_admin"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"admin robot {self.robot_id}"


class ConfigRevision(models.Model):
    """One applied revision of an organisation's configuration document."""

    organisation = models.ForeignKey(
        Organisation, on_delete=models.CASCADE, related_name="config_revisions"
    )
    sha256 = models.CharField(max_length=64)
    applied_at = models.DateTimeField(auto_now_add=True)
    applied_by_kind = models.CharField(max_length=16)  # user, robot or operator
    applied_by_name = models.CharField(max_length=200)
    document = models.TextField()
    # "team:devs", "robot:ci", "repository:acme/app", ...: what the document declares.
    managed = models.JSONField(default=list)
    changes = models.PositiveIntegerField(default=0)
    pruned = models.BooleanField(default=False)

    class Meta:
        indexes = [models.Index(fields=["organisation", "-applied_at"], name="config_rev_latest")]

    def __str__(self) -> str:
        return f"{self.organisation_id}@{self.sha256[:12]}"

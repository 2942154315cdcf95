"""Serializers for organisations, members, teams, default grants, repositories and grants.

Privilege fields (a member's role, a grant's level, may_create_repositories) are
either read-only here or checked by the view against the actor's rights; the
organisation a thing belongs to always comes from the URL, never from the body.
"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from teams.api.common import LEVEL_NAMES, level_name
from teams.models import DefaultGrant, Membership, Organisation, RepositoryGrant, Team, TeamMember

SUBJECT_TYPES = ["user", "team", "robot"]


class OrganisationSerializer(serializers.ModelSerializer):
    role = serializers.SerializerMethodField(help_text="The caller's role: owner or member.")

    class Meta:
        model = Organisation
        fields = ["name", "display_name", "description", "created_at", "role"]
        read_only_fields = ["created_at", "role"]

    def get_role(self, obj: Organisation) -> str | None:
        roles: dict[int, str] = self.context.get("roles", {})
        return roles.get(obj.pk)


class OrganisationUpdateSerializer(serializers.Serializer):
    display_name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    description = serializers.CharField(required=False, allow_blank=True)


class MemberSerializer(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username", read_only=True)

    class Meta:
        model = Membership
        fields = ["username", "role", "created_at"]
        read_only_fields = fields


class MemberAddSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    role = serializers.ChoiceField(choices=Membership.Role.choices, default=Membership.Role.MEMBER)


class RoleSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=Membership.Role.choices)


class TeamSerializer(serializers.ModelSerializer):
    class Meta:
        model = Team
        fields = ["name", "description", "may_create_repositories", "created_at"]
        read_only_fields = ["created_at"]


class TeamUpdateSerializer(serializers.Serializer):
    description = serializers.CharField(required=False, allow_blank=True)
    may_create_repositories = serializers.BooleanField(
        required=False, help_text="Only organisation owners may change this."
    )


class TeamMemberSerializer(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username", read_only=True)

    class Meta:
        model = TeamMember
        fields = ["username", "role"]
        read_only_fields = fields


class TeamMemberAddSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    role = serializers.ChoiceField(choices=TeamMember.Role.choices, default=TeamMember.Role.MEMBER)


class TeamRoleSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=TeamMember.Role.choices)


def subject_of(grant: RepositoryGrant | DefaultGrant) -> tuple[str, str]:
    if grant.user is not None:
        return "user", str(grant.user.username)
    if grant.team is not None:
        return "team", grant.team.name
    assert grant.robot is not None
    return "robot", grant.robot.username


class GrantInputSerializer(serializers.Serializer):
    subject_type = serializers.ChoiceField(choices=SUBJECT_TYPES)
    subject = serializers.CharField(
        max_length=200,
        help_text="A username, a team of the organisation, or a robot (name or org+name).",
    )
    level = serializers.ChoiceField(choices=LEVEL_NAMES)


class GrantSerializer(serializers.Serializer):
    subject_type = serializers.SerializerMethodField()
    subject = serializers.SerializerMethodField()
    level = serializers.SerializerMethodField()

    def get_subject_type(self, obj: RepositoryGrant) -> str:
        return subject_of(obj)[0]

    def get_subject(self, obj: RepositoryGrant) -> str:
        return subject_of(obj)[1]

    def get_level(self, obj: RepositoryGrant) -> str:
        return level_name(obj.level)


class DefaultGrantSerializer(GrantSerializer):
    id = serializers.IntegerField(read_only=True)


class RepositorySerializer(serializers.Serializer):
    name = serializers.CharField(read_only=True)
    namespace = serializers.SerializerMethodField()
    visibility = serializers.CharField(read_only=True)
    description = serializers.CharField(read_only=True)
    untagged_manifest_hours = serializers.IntegerField(
        read_only=True,
        allow_null=True,
        help_text="Garbage collection removes untagged manifests this old; null keeps them.",
    )
    created_at = serializers.DateTimeField(read_only=True)
    level = serializers.SerializerMethodField(help_text="The caller's level: read, write or admin.")

    def get_namespace(self, obj: Any) -> str | None:
        return obj.namespace.name if obj.namespace is not None else None

    def get_level(self, obj: Any) -> str:
        levels: dict[int, int] = self.context.get("levels", {})
        return level_name(levels.get(obj.pk, 0))


class RepositoryUpdateSerializer(serializers.Serializer):
    description = serializers.CharField(required=False, allow_blank=True)
    visibility = serializers.ChoiceField(choices=["private", "public"], required=False)
    untagged_manifest_hours = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=0,
        max_value=100 * 365 * 24,
        help_text="Remove untagged manifests pushed this many hours ago; null keeps them.",
    )

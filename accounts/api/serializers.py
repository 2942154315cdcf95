"""Serializers for robots and access tokens. A secret appears only in a create response."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from accounts.actions import clean_scopes
from accounts.models import AccessToken, Robot
from teams.permissions import ALL_ACTIONS


class RobotSerializer(serializers.ModelSerializer):
    username = serializers.CharField(read_only=True, help_text="Sign in as this (org+name).")
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = Robot
        fields = [
            "name",
            "username",
            "description",
            "may_create_repositories",
            "created_by",
            "created_at",
            "disabled_at",
        ]
        read_only_fields = ["username", "created_by", "created_at", "disabled_at"]


class RobotUpdateSerializer(serializers.Serializer):
    description = serializers.CharField(required=False, allow_blank=True)
    may_create_repositories = serializers.BooleanField(required=False)


class ScopeSerializer(serializers.Serializer):
    repository = serializers.CharField(
        max_length=255, help_text="A name or pattern: * within a component, ** across them."
    )
    actions = serializers.ListField(
        child=serializers.ChoiceField(choices=sorted(ALL_ACTIONS)), allow_empty=False
    )


class TokenSerializer(serializers.ModelSerializer):
    revoked = serializers.SerializerMethodField()

    class Meta:
        model = AccessToken
        fields = [
            "id",
            "name",
            "prefix",
            "created_at",
            "expires_at",
            "last_used_at",
            "revoked",
            "revoked_at",
        ]
        read_only_fields = fields

    def get_revoked(self, obj: AccessToken) -> bool:
        return obj.revoked_at is not None


class TokenCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    expires_at = serializers.DateTimeField(required=False, allow_null=True)


class PersonalTokenSerializer(TokenSerializer):
    scopes = ScopeSerializer(many=True, read_only=True)

    class Meta(TokenSerializer.Meta):
        fields = [*TokenSerializer.Meta.fields, "scopes"]
        read_only_fields = fields


class PersonalTokenCreateSerializer(TokenCreateSerializer):
    scopes = ScopeSerializer(many=True)

    def validate_scopes(self, value: Any) -> list[dict[str, Any]]:
        try:
            return clean_scopes([dict(scope) for scope in value])
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.messages) from None


class NewTokenSerializer(TokenSerializer):
    """The token just made, with its secret: shown this once, only a hash is kept."""

    secret = serializers.SerializerMethodField(help_text="Shown once; store it now.")
    username = serializers.SerializerMethodField(help_text="The username to sign in with.")

    class Meta(TokenSerializer.Meta):
        fields = [*TokenSerializer.Meta.fields, "username", "secret"]
        read_only_fields = fields

    def get_secret(self, obj: AccessToken) -> str:
        return str(self.context["secret"])

    def get_username(self, obj: AccessToken) -> str:
        if obj.robot is not None:
            return obj.robot.username
        return str(getattr(obj.user, "username", ""))


class NewPersonalTokenSerializer(NewTokenSerializer):
    scopes = ScopeSerializer(many=True, read_only=True)

    class Meta(NewTokenSerializer.Meta):
        fields = [*NewTokenSerializer.Meta.fields, "scopes"]
        read_only_fields = fields

"""The web UI's forms: validated on the server, whatever the browser checked."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone

from accounts.actions import clean_scopes
from teams.models import Level, Membership, TeamMember, namespace_validator

EXPIRY_CHOICES = [("7", "7 days"), ("30", "30 days"), ("90", "90 days"), ("365", "1 year")]
ACTION_CHOICES = [("pull", "pull"), ("push", "push"), ("delete", "delete")]
LEVEL_CHOICES = [
    (str(int(Level.READ)), "read"),
    (str(int(Level.WRITE)), "write"),
    (str(int(Level.ADMIN)), "admin"),
    (str(int(Level.NONE)), "none (remove the grant)"),
]


class TokenForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="To recognise the token later.")
    repository = forms.CharField(
        max_length=255,
        initial="**",
        help_text="Which repositories: alice/app, acme/* (one level) or acme/** (all).",
    )
    actions = forms.MultipleChoiceField(
        choices=ACTION_CHOICES, widget=forms.CheckboxSelectMultiple, initial=["pull"]
    )
    expires = forms.ChoiceField(choices=EXPIRY_CHOICES, initial="30", label="Expires in")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if "repository" in data and "actions" in data:
            try:
                data["scopes"] = clean_scopes(
                    [{"repository": data["repository"], "actions": list(data["actions"])}]
                )
            except ValidationError as exc:
                raise ValidationError(
                    "Use lowercase letters, digits, . _ - / and * in the repository pattern."
                ) from exc
        if "expires" in data:
            data["expires_at"] = timezone.now() + timedelta(days=int(data["expires"]))
        return data


class OrganisationForm(forms.Form):
    name = forms.CharField(
        max_length=64,
        validators=[namespace_validator],
        help_text="The namespace: lowercase letters, digits and . _ - (acme/app).",
    )
    display_name = forms.CharField(max_length=200, required=False)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)


class MemberForm(forms.Form):
    username = forms.CharField(max_length=150)
    role = forms.ChoiceField(
        choices=Membership.Role.choices, initial=Membership.Role.MEMBER, required=False
    )

    def clean_role(self) -> str:
        return str(self.cleaned_data.get("role") or Membership.Role.MEMBER)


class TeamForm(forms.Form):
    name = forms.CharField(max_length=64, validators=[namespace_validator])
    description = forms.CharField(max_length=500, required=False)


class TeamMemberForm(forms.Form):
    username = forms.CharField(max_length=150)
    role = forms.ChoiceField(
        choices=TeamMember.Role.choices, initial=TeamMember.Role.MEMBER, required=False
    )

    def clean_role(self) -> str:
        return str(self.cleaned_data.get("role") or TeamMember.Role.MEMBER)


class GrantForm(forms.Form):
    repository = forms.CharField(max_length=255, help_text="The full name, e.g. acme/app.")
    level = forms.ChoiceField(choices=LEVEL_CHOICES, initial=str(int(Level.READ)))


class RepositorySettingsForm(forms.Form):
    description = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 8}),
        required=False,
        max_length=20000,
        help_text="Markdown. Shown on the repository page (HTML is sanitised).",
    )
    visibility = forms.ChoiceField(
        choices=[("private", "private: only those granted may pull"), ("public", "public")],
        widget=forms.RadioSelect,
    )


class OrganisationSettingsForm(forms.Form):
    display_name = forms.CharField(max_length=200, required=False)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)


class RobotForm(forms.Form):
    name = forms.CharField(
        max_length=64,
        validators=[namespace_validator],
        help_text="It signs in as organisation+name.",
    )
    description = forms.CharField(max_length=500, required=False)
    may_create = forms.BooleanField(
        required=False, label="May create repositories in the organisation's namespace"
    )


class RobotTokenForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="E.g. the CI pipeline that uses it.")
    expires = forms.ChoiceField(choices=EXPIRY_CHOICES, initial="90", label="Expires in")


class DefaultGrantForm(forms.Form):
    team = forms.CharField(max_length=64, help_text="A team of this organisation.")
    level = forms.ChoiceField(choices=LEVEL_CHOICES[:3], initial=str(int(Level.READ)))

"""The web UI's forms: validated on the server, whatever the browser checked."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, ClassVar

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone

from accounts.actions import clean_scopes
from registry.webhooks.safety import UnsafeTarget, resolve
from teams.models import Level, Membership, TeamMember, namespace_validator

EXPIRY_CHOICES = [("7", "7 days"), ("30", "30 days"), ("90", "90 days"), ("365", "1 year")]
ACTION_CHOICES = [("pull", "pull"), ("push", "push"), ("delete", "delete")]
SUBJECT_CHOICES = [("user", "a user"), ("team", "a team"), ("robot", "a robot")]
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


class _UserRoleForm(forms.Form):
    """A username and a role among `roles` (left out: the default role)."""

    roles: ClassVar[list[tuple[str, str]]] = []
    default_role: ClassVar[str] = ""
    username = forms.CharField(max_length=150)
    role = forms.ChoiceField(choices=(), required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        role = self.fields["role"]
        assert isinstance(role, forms.ChoiceField)  # noqa: S101 - for mypy
        role.choices = self.roles
        role.initial = self.default_role

    def clean_role(self) -> str:
        return str(self.cleaned_data.get("role") or self.default_role)


class MemberForm(_UserRoleForm):
    roles = list(Membership.Role.choices)
    default_role = Membership.Role.MEMBER


class TeamMemberForm(_UserRoleForm):
    roles = list(TeamMember.Role.choices)
    default_role = TeamMember.Role.MEMBER


class TeamForm(forms.Form):
    name = forms.CharField(max_length=64, validators=[namespace_validator])
    description = forms.CharField(max_length=500, required=False)


class TeamEditForm(TeamForm):
    may_create = forms.BooleanField(
        required=False, label="Members may create repositories in the organisation's namespace"
    )


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


class SubjectGrantForm(forms.Form):
    """Who gets a level: a user, a team or a robot of the organisation, by name."""

    kind = forms.ChoiceField(choices=SUBJECT_CHOICES, initial="team", label="Grant to")
    name = forms.CharField(
        max_length=150,
        help_text="A username, a team of the organisation, or a robot (ci or acme+ci).",
    )
    level = forms.ChoiceField(choices=LEVEL_CHOICES[:3], initial=str(int(Level.READ)))


WEBHOOK_EVENTS = [("push", "push"), ("tag_delete", "tag deleted"), ("pull", "pull")]
PATTERNS_MAX = 100


def _patterns(text: str) -> list[str]:
    """One glob pattern a line, blank lines left out."""
    found = [line.strip() for line in text.splitlines() if line.strip()]
    if len(found) > PATTERNS_MAX:
        raise ValidationError(f"At most {PATTERNS_MAX} patterns.")
    if any(len(p) > 128 for p in found):
        raise ValidationError("A pattern may be at most 128 characters long.")
    return found


class WebhookForm(forms.Form):
    url = forms.URLField(
        max_length=2000,
        assume_scheme="https",
        label="URL",
        help_text="Told with a POST signed with the secret (HMAC-SHA256 of the body).",
    )
    events = forms.MultipleChoiceField(
        choices=WEBHOOK_EVENTS, widget=forms.CheckboxSelectMultiple, initial=["push", "tag_delete"]
    )
    secret = forms.CharField(
        min_length=16,
        max_length=200,
        required=False,
        help_text="At least 16 characters; leave it empty and Hub makes one (shown once).",
    )

    def clean_url(self) -> str:
        url = str(self.cleaned_data["url"])
        try:
            resolve(url)
        except UnsafeTarget as exc:
            raise ValidationError(str(exc)) from None
        return url


class PolicyForm(forms.Form):
    immutable_tags = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        label="Immutable tags",
        help_text="One pattern a line (v*, release-?): a matching tag, once pushed, never "
        "moves or goes.",
    )
    retention_enabled = forms.BooleanField(
        required=False, label="Remove tags by the rules below (daily)"
    )
    keep_last = forms.IntegerField(
        min_value=0, required=False, label="Keep the newest", help_text="Tags; empty: no limit."
    )
    remove_older_than_days = forms.IntegerField(
        min_value=1,
        max_value=36500,
        required=False,
        label="Remove tags not pushed for",
        help_text="Days; empty: no age limit.",
    )
    keep_patterns = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}),
        required=False,
        label="Always keep",
        help_text="One pattern a line (latest, stable-*).",
    )

    def clean_immutable_tags(self) -> list[str]:
        return _patterns(self.cleaned_data["immutable_tags"])

    def clean_keep_patterns(self) -> list[str]:
        return _patterns(self.cleaned_data["keep_patterns"])

    @staticmethod
    def initial_of(policy: Any) -> dict[str, Any]:
        if policy is None:
            return {}
        return {
            "immutable_tags": "\n".join(policy.immutable_tags),
            "retention_enabled": policy.retention_enabled,
            "keep_last": policy.keep_last,
            "remove_older_than_days": policy.remove_older_than_days,
            "keep_patterns": "\n".join(policy.keep_patterns),
        }


class QuotaForm(forms.Form):
    limit_mib = forms.IntegerField(
        min_value=0,
        max_value=1024 * 1024 * 1024,
        required=False,
        label="Limit (MiB)",
        help_text="Empty: no limit.",
    )

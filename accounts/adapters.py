"""Hub's rules for allauth: usernames are namespaces, and sign-up can be closed."""

from __future__ import annotations

from typing import Any

from allauth.account.adapter import DefaultAccountAdapter
from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import HttpRequest

from teams.models import Namespace, namespace_validator


def _namespace_free(value: str) -> None:
    if Namespace.objects.filter(name=value.lower()).exists():
        raise ValidationError("This name is taken.")


# A username becomes the user's namespace (`alice/app`), so it follows the same grammar.
USERNAME_VALIDATORS = [namespace_validator, _namespace_free]


class AccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request: HttpRequest) -> bool:
        return bool(settings.HUB_SIGNUP_OPEN)

    def clean_username(self, username: str, shallow: bool = False) -> Any:
        return super().clean_username(username.lower(), shallow=shallow)

"""Sign-in, sign-out and second-factor changes, from django-allauth's signals."""

from __future__ import annotations

from typing import Any

from allauth.mfa import signals as mfa_signals
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from audit import record
from teams.permissions import Actor


def _method(kwargs: dict[str, Any]) -> str:
    return "session" if kwargs.get("sociallogin") is not None else "password"


@receiver(user_logged_in)
def _logged_in(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    record(
        action="auth.login",
        actor=Actor(user=user, method=_method(kwargs)),
        request=request,
        details={"via": "sociallogin" if kwargs.get("sociallogin") is not None else "password"},
    )


@receiver(user_login_failed)
def _login_failed(sender: Any, credentials: dict[str, Any], request: Any = None, **_: Any) -> None:
    attempted = str(credentials.get("username") or credentials.get("email") or "")[:150]
    record(
        action="auth.login_failed",
        outcome="failure",
        request=request,
        details={"username": attempted},
    )


@receiver(user_logged_out)
def _logged_out(sender: Any, request: Any, user: Any, **_: Any) -> None:
    if user is None:
        return
    record(action="auth.logout", actor=Actor(user=user, method="session"), request=request)


def _authenticator(action: str, request: Any, user: Any, authenticator: Any) -> None:
    record(
        action=action,
        actor=Actor(user=user, method="session"),
        request=request,
        details={
            "type": str(getattr(authenticator, "type", "")),
            "authenticator_id": getattr(authenticator, "pk", None),
        },
    )


@receiver(mfa_signals.authenticator_added)
def _mfa_added(sender: Any, request: Any, user: Any, authenticator: Any, **_: Any) -> None:
    _authenticator("mfa.enable", request, user, authenticator)


@receiver(mfa_signals.authenticator_removed)
def _mfa_removed(sender: Any, request: Any, user: Any, authenticator: Any, **_: Any) -> None:
    _authenticator("mfa.disable", request, user, authenticator)

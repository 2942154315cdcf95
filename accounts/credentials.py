"""Checking credentials: passwords, personal access tokens and robot tokens.

Password hashes are slow on purpose, so a password verified once is remembered
for HUB_AUTH_CACHE_SECONDS under a key that includes the stored hash: changing
the password (or deactivating the account) ends it at once. Tokens are long and
random, so they are looked up by a fast hash. Failures are counted per account
and per address in the shared cache, and too many lock both out for a while.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import check_password, make_password
from django.core.cache import cache
from django.utils import timezone

from accounts.models import AccessToken, hash_token
from teams.permissions import Actor

TOKEN_PREFIX = "hubt_"


class AuthenticationFailed(Exception):
    pass


class RateLimited(Exception):
    pass


def new_token_secret() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


_recent_actors: dict[str, tuple[float, Actor]] = {}
_lock = threading.Lock()
_MAX_REMEMBERED = 10_000


def forget_verified() -> None:
    """Drop every remembered password (tests; and a process may call it on demand)."""
    with _lock:
        _recent_actors.clear()


class TwoFactorRequired(Exception):
    pass


def _password_ok(user: Any, password: str) -> bool:
    """The full, slow check (authenticate() remembers its result)."""
    if not check_password(password, str(user.password)):
        return False
    if _has_two_factor(user):
        # A second factor can't be asked for over Basic: such accounts use tokens.
        raise TwoFactorRequired("two-factor is on for this account: use an access token")
    return True


def _failure_keys(username: str, address: str) -> list[tuple[str, int]]:
    account = hashlib.sha256(username.lower().encode()).hexdigest()[:32]
    return [
        (f"authfail:acct:{account}", settings.HUB_AUTH_MAX_FAILURES_PER_ACCOUNT),
        (f"authfail:addr:{address}", settings.HUB_AUTH_MAX_FAILURES_PER_ADDRESS),
    ]


def check_rate(username: str, address: str) -> None:
    counts = cache.get_many([key for key, _ in _failure_keys(username, address)])
    for key, limit in _failure_keys(username, address):
        if int(counts.get(key, 0)) >= limit:
            raise RateLimited("too many failed sign-ins; try again later")


def record_failure(username: str, address: str) -> None:
    window = settings.HUB_AUTH_FAILURE_WINDOW
    for key, _ in _failure_keys(username, address):
        cache.add(key, 0, timeout=window)
        try:
            cache.incr(key)
        except ValueError:
            cache.set(key, 1, timeout=window)


def _touch(token: AccessToken) -> None:
    # Recorded at most once a minute: a pull must not turn into a write per request.
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > timedelta(seconds=60):
        AccessToken.objects.filter(pk=token.pk).update(last_used_at=now)


def _token(secret: str) -> AccessToken | None:
    token = (
        AccessToken.objects.select_related("user", "robot", "robot__organisation", "parent")
        .filter(secret_hash=hash_token(secret))
        .first()
    )
    if token is None or not token.is_active:
        return None
    return token


def _has_two_factor(user: object) -> bool:
    try:
        from allauth.mfa.models import Authenticator
    except ImportError:  # pragma: no cover - allauth is a dependency
        return False
    return Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists()


def verify(username: str, password: str) -> Actor | None:
    """The actor these credentials prove, or None."""
    if not username or not password:
        return None
    if "+" in username:
        org_name, _, robot_name = username.partition("+")
        token = _token(password)
        if token is None or token.robot is None or token.robot.disabled_at is not None:
            return None
        robot = token.robot
        if robot.name != robot_name or robot.organisation.name != org_name:
            return None
        _touch(token)
        return Actor(robot=robot, token=token, method="robot")
    user = get_user_model().objects.filter(username=username).first()
    if user is None or not user.is_active:
        make_password(password)  # as slow as a real check: no hint that the name is unknown
        return None
    if password.startswith(TOKEN_PREFIX):
        token = _token(password)
        if token is None or token.user_id != user.pk:
            return None
        _touch(token)
        return Actor(user=user, token=token, method="token")
    if not _password_ok(user, password):
        return None
    return Actor(user=user, method="password")


def authenticate(*, username: str, password: str, address: str) -> Actor:
    """verify(), with failures counted and too many of them refused (RateLimited).

    Tokens are too long to guess, so only password attempts wait on the failure
    count (one cache read). A password that passed the full check is remembered with
    its actor for HUB_AUTH_CACHE_SECONDS, so Basic credentials on every request cost
    no database work: on this process a change to the user ends that at once (a
    signal), on other processes within HUB_AUTH_CACHE_SECONDS. Tokens are looked up
    every time, so revoking one takes effect at once everywhere.
    """
    is_password = "+" not in username and not password.startswith(TOKEN_PREFIX)
    if is_password:
        remembered = _recent_actors.get(_pair_key(username, password))
        if remembered is not None and remembered[0] > time.monotonic():
            return remembered[1]
        check_rate(username, address)
    try:
        actor = verify(username, password)
    except TwoFactorRequired as exc:
        raise AuthenticationFailed(str(exc)) from None
    if actor is None:
        record_failure(username, address)
        raise AuthenticationFailed("invalid username or password")
    if actor.method == "password" and settings.HUB_AUTH_CACHE_SECONDS:
        with _lock:
            if len(_recent_actors) >= _MAX_REMEMBERED:
                _recent_actors.clear()
            expiry = time.monotonic() + settings.HUB_AUTH_CACHE_SECONDS
            _recent_actors[_pair_key(username, password)] = (expiry, actor)
    return actor


def _pair_key(username: str, password: str) -> str:
    return hashlib.sha256(f"{username}\0{password}".encode()).hexdigest()

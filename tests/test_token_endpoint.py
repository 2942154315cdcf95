"""The token endpoint's refresh tokens (what `docker login` keeps instead of a secret)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from accounts.actions import token_create
from accounts.models import AccessToken
from tests.conftest import basic_auth
from tests.people import People

pytestmark = pytest.mark.django_db


def docker_login(username: str, secret: str) -> dict[str, Any]:
    """What dockerd sends at `docker login`: GET with Basic and offline_token=true."""
    response = Client(HTTP_AUTHORIZATION=basic_auth(username, secret)).get(
        "/auth/token",
        {"account": username, "client_id": "docker", "offline_token": "true", "service": "hub"},
    )
    assert response.status_code == 200, response.content
    return json.loads(response.content)


def refresh(secret: str) -> int:
    response = Client().post(
        "/auth/token",
        {
            "grant_type": "refresh_token",
            "refresh_token": secret,
            "service": "hub",
            "client_id": "docker",
            "scope": "repository:acme/private:pull",
        },
    )
    return response.status_code


def test_a_login_with_an_expiring_token_gets_a_refresh_token_expiring_with_it(
    people: People,
) -> None:
    expires = timezone.now() + timedelta(days=1)
    token, secret = token_create(
        name="laptop",
        user=people.bob,
        scopes=[{"repository": "acme/*", "actions": ["pull"]}],
        expires_at=expires,
    )
    issued = docker_login("bob", secret)["refresh_token"]
    kept = AccessToken.objects.get(prefix=issued[:12])
    assert kept.expires_at == expires
    assert kept.scopes == token.scopes
    assert refresh(issued) == 200

    # Once the token it came from has expired, the refresh token is no good either.
    AccessToken.objects.filter(pk=kept.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert refresh(issued) == 401


def test_a_robot_login_gets_a_refresh_token_expiring_with_the_robot_token(
    people: People,
) -> None:
    expires = timezone.now() + timedelta(hours=2)
    _, secret = token_create(name="short", robot=people.robot, expires_at=expires)
    issued = docker_login("acme+ci", secret)["refresh_token"]
    kept = AccessToken.objects.get(prefix=issued[:12])
    assert kept.robot_id == people.robot.pk and kept.user_id is None
    assert kept.expires_at == expires


def test_a_password_login_gets_a_refresh_token_without_expiry(people: People) -> None:
    issued = docker_login("bob", "correct horse battery staple")["refresh_token"]
    kept = AccessToken.objects.get(prefix=issued[:12])
    assert kept.user_id == people.bob.pk and kept.expires_at is None
    assert refresh(issued) == 200


def test_it_revokes_refresh_tokens_with_the_token_they_came_from(people: People) -> None:
    from accounts.actions import token_create, token_revoke

    parent, secret = token_create(
        name="ci", user=people.bob, scopes=[{"repository": "acme/**", "actions": ["pull"]}]
    )
    response = Client().post(
        "/auth/token",
        {
            "grant_type": "password",
            "username": "bob",
            "password": secret,
            "service": "hub",
            "access_type": "offline",
        },
    )
    refresh = json.loads(response.content)["refresh_token"]
    token_revoke(token=parent)
    response = Client().post(
        "/auth/token", {"grant_type": "refresh_token", "refresh_token": refresh, "service": "hub"}
    )
    assert response.status_code == 401

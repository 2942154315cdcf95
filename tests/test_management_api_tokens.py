"""Tokens through the management API: shown once, stored hashed, scoped, revocable."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import AccessToken, hash_token
from tests.management_api import as_, basic, call
from tests.people import People

pytestmark = pytest.mark.django_db

TOKENS = "/api/user/tokens/"


def _make(client: Client, people: People, scopes: list[dict[str, object]], **extra: object) -> dict:
    response = as_(
        client, people, "alice", "POST", TOKENS, {"name": "ci", "scopes": scopes, **extra}
    )
    assert response.status_code == 201, response.content
    return response.json()


def test_it_shows_the_secret_once_and_stores_only_its_hash(client: Client, people: People) -> None:
    made = _make(client, people, [{"repository": "acme/*", "actions": ["push", "pull"]}])
    secret = made["secret"]
    assert secret.startswith("hubt_") and len(secret) > 40
    assert made["prefix"] == secret[:12]
    assert made["username"] == "alice"
    assert made["scopes"] == [{"repository": "acme/*", "actions": ["pull", "push"]}]
    token = AccessToken.objects.get(pk=made["id"])
    assert token.secret_hash == hash_token(secret)
    assert secret not in str([getattr(token, f.attname) for f in token._meta.fields])
    listed = as_(client, people, "alice", "GET", TOKENS).json()["results"]
    assert [t["id"] for t in listed] == [made["id"]]
    assert "secret" not in listed[0] and secret not in str(listed)
    assert listed[0]["revoked"] is False and listed[0]["last_used_at"] is None
    one = as_(client, people, "alice", "GET", f"{TOKENS}{made['id']}/").json()
    assert "secret" not in one


def test_it_revokes_a_token_at_once(client: Client, people: People) -> None:
    made = _make(client, people, [{"repository": "acme/**", "actions": ["pull"]}])
    auth = {"HTTP_AUTHORIZATION": basic("alice", made["secret"])}
    assert call(client, "GET", "/api/repositories/acme/private/", auth=auth).status_code == 200
    listed = as_(client, people, "alice", "GET", TOKENS).json()["results"]
    assert listed[0]["last_used_at"] is not None
    assert as_(client, people, "alice", "DELETE", f"{TOKENS}{made['id']}/").status_code == 204
    response = call(client, "GET", "/api/repositories/", auth=auth)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Basic")
    one = as_(client, people, "alice", "GET", f"{TOKENS}{made['id']}/").json()
    assert one["revoked"] is True and one["revoked_at"] is not None


def test_it_hides_other_peoples_tokens(client: Client, people: People) -> None:
    made = _make(client, people, [{"repository": "acme/*", "actions": ["pull"]}])
    assert as_(client, people, "bob", "GET", f"{TOKENS}{made['id']}/").status_code == 404
    assert as_(client, people, "bob", "DELETE", f"{TOKENS}{made['id']}/").status_code == 404
    assert as_(client, people, "bob", "GET", TOKENS).json()["results"] == []
    assert AccessToken.objects.get(pk=made["id"]).revoked_at is None


def test_it_caps_what_a_token_sees_by_its_scopes(client: Client, people: People) -> None:
    made = _make(client, people, [{"repository": "acme/public", "actions": ["pull"]}])
    auth = {"HTTP_AUTHORIZATION": basic("alice", made["secret"])}
    body = call(client, "GET", "/api/repositories/", auth=auth).json()
    assert [(r["name"], r["level"]) for r in body["results"]] == [("acme/public", "read")]
    assert call(client, "GET", "/api/repositories/acme/private/", auth=auth).status_code == 404
    response = call(
        client, "PATCH", "/api/repositories/acme/public/", {"description": "x"}, auth=auth
    )
    assert response.status_code == 403


def test_it_never_widens_a_token_beyond_its_owner(client: Client, people: People) -> None:
    response = as_(
        client,
        people,
        "bob",
        "POST",
        TOKENS,
        {"name": "all", "scopes": [{"repository": "**", "actions": ["pull", "push", "delete"]}]},
    )
    auth = {"HTTP_AUTHORIZATION": basic("bob", response.json()["secret"])}
    body = call(client, "GET", "/api/repositories/", auth=auth).json()
    assert {r["name"]: r["level"] for r in body["results"]} == {
        "acme/private": "write",
        "acme/public": "read",
    }
    assert call(client, "GET", "/api/repositories/alice/own/", auth=auth).status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "scopes": []}, "scopes"),
        ({"name": "x", "scopes": [{"repository": "ACME/*", "actions": ["pull"]}]}, "scopes"),
        ({"name": "x", "scopes": [{"repository": "acme/*", "actions": ["admin"]}]}, "scopes"),
        ({"name": "x"}, "scopes"),
        ({"scopes": [{"repository": "acme/*", "actions": ["pull"]}]}, "name"),
    ],
)
def test_it_explains_bad_token_requests(
    client: Client, people: People, body: dict[str, object], field: str
) -> None:
    response = as_(client, people, "alice", "POST", TOKENS, body)
    assert response.status_code == 400
    assert field in response.json()


def test_it_refuses_an_expiry_in_the_past_and_honours_one_in_the_future(
    client: Client, people: People
) -> None:
    scopes = [{"repository": "acme/*", "actions": ["pull"]}]
    past = (timezone.now() - timedelta(hours=1)).isoformat()
    response = as_(
        client, people, "alice", "POST", TOKENS, {"name": "x", "scopes": scopes, "expires_at": past}
    )
    assert response.status_code == 400
    assert "future" in str(response.json())
    future = timezone.now() + timedelta(days=1)
    made = _make(client, people, scopes, expires_at=future.isoformat())
    assert made["expires_at"] is not None
    AccessToken.objects.filter(pk=made["id"]).update(expires_at=timezone.now() - timedelta(1))
    auth = {"HTTP_AUTHORIZATION": basic("alice", made["secret"])}
    assert call(client, "GET", "/api/repositories/", auth=auth).status_code == 401


def test_it_makes_lists_and_revokes_robot_tokens(client: Client, people: People) -> None:
    tokens = "/api/orgs/acme/robots/ci/tokens/"
    made = as_(client, people, "alice", "POST", tokens, {"name": "deploy"})
    assert made.status_code == 201
    made = made.json()
    assert made["username"] == "acme+ci" and made["secret"].startswith("hubt_")
    listed = as_(client, people, "alice", "GET", tokens).json()["results"]
    assert {t["name"] for t in listed} == {"ci", "deploy"}
    assert all("secret" not in t for t in listed)
    auth = {"HTTP_AUTHORIZATION": basic("acme+ci", made["secret"])}
    assert call(client, "GET", "/api/repositories/acme/private/", auth=auth).status_code == 200
    assert as_(client, people, "alice", "DELETE", f"{tokens}{made['id']}/").status_code == 204
    assert call(client, "GET", "/api/repositories/", auth=auth).status_code == 401
    # The other token of the robot still works.
    assert as_(client, people, "robot", "GET", "/api/repositories/").status_code == 200
    # Another organisation's owner can't reach these tokens.
    assert as_(client, people, "bob", "DELETE", f"{tokens}{made['id']}/").status_code == 403


def test_it_works_with_a_session_too(client: Client, people: People) -> None:
    client.force_login(people.alice)
    response = call(
        client,
        "POST",
        TOKENS,
        {"name": "web", "scopes": [{"repository": "alice/*", "actions": ["pull"]}]},
    )
    assert response.status_code == 201
    assert call(client, "GET", "/api/orgs/").json()["results"][0]["name"] == "acme"


def test_it_treats_a_registry_bearer_token_as_its_grants_only(
    client: Client, people: People
) -> None:
    from django.conf import settings

    from accounts import jwt_tokens

    token, _ = jwt_tokens.issue(
        subject="alice",
        subject_key=f"user:{people.alice.pk}",
        audience=settings.HUB_TOKEN_SERVICE,
        access=[{"type": "repository", "name": "acme/private", "actions": ["pull"]}],
        auth_method="token",
    )
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    detail = call(client, "GET", "/api/repositories/acme/private/", auth=auth)
    assert detail.status_code == 200 and detail.json()["level"] == "read"
    assert call(client, "GET", "/api/repositories/alice/own/", auth=auth).status_code == 404
    # alice owns acme, but a registry token is no way to manage it or to mint tokens.
    assert call(client, "GET", "/api/orgs/acme/", auth=auth).status_code == 403
    body = {"name": "x", "scopes": [{"repository": "**", "actions": ["pull"]}]}
    assert call(client, "POST", TOKENS, body, auth=auth).status_code == 403

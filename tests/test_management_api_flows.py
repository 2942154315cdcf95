"""Management API round trips: what a write answers is what a later read shows."""

from __future__ import annotations

import pytest
from django.test import Client

from registry.models import Repository
from teams.models import DefaultGrant, Level, Namespace, Organisation, RepositoryGrant
from tests.management_api import as_
from tests.people import People

pytestmark = pytest.mark.django_db


def test_it_creates_changes_and_deletes_an_organisation(client: Client, people: People) -> None:
    made = as_(
        client,
        people,
        "bob",
        "POST",
        "/api/orgs/",
        {"name": "widgets", "display_name": "Widgets", "description": "w"},
    )
    assert made.status_code == 201
    assert made.json()["role"] == "owner"
    changed = as_(client, people, "bob", "PATCH", "/api/orgs/widgets/", {"display_name": "W"})
    assert changed.json()["display_name"] == "W" and changed.json()["description"] == "w"
    assert as_(client, people, "bob", "DELETE", "/api/orgs/widgets/").status_code == 204
    assert not Organisation.objects.filter(name="widgets").exists()
    assert not Namespace.objects.filter(name="widgets").exists()


@pytest.mark.parametrize("name", ["alice", "acme", "Bad Name", ""])
def test_it_refuses_a_taken_or_bad_organisation_name(
    client: Client, people: People, name: str
) -> None:
    response = as_(client, people, "charlie", "POST", "/api/orgs/", {"name": name})
    assert response.status_code == 400
    assert response.json()


def test_it_refuses_deleting_an_organisation_with_repositories(
    client: Client, people: People
) -> None:
    response = as_(client, people, "alice", "DELETE", "/api/orgs/acme/")
    assert response.status_code == 400
    assert "repositories" in str(response.json())


def test_it_manages_members_and_teams(client: Client, people: People) -> None:
    org = "/api/orgs/acme/"
    assert (
        as_(client, people, "alice", "POST", org + "members/", {"username": "charlie"}).status_code
        == 201
    )
    assert (
        as_(client, people, "alice", "POST", org + "members/", {"username": "charlie"}).status_code
        == 409
    )
    assert (
        as_(client, people, "alice", "POST", org + "members/", {"username": "nobody"}).status_code
        == 400
    )
    members = as_(client, people, "charlie", "GET", org + "members/").json()["results"]
    assert {m["username"]: m["role"] for m in members} == {
        "alice": "owner",
        "bob": "member",
        "charlie": "member",
    }
    team = as_(
        client,
        people,
        "alice",
        "POST",
        org + "teams/",
        {"name": "ops", "may_create_repositories": True},
    )
    assert team.status_code == 201 and team.json()["may_create_repositories"] is True
    assert as_(client, people, "alice", "POST", org + "teams/", {"name": "ops"}).status_code == 409
    added = as_(
        client,
        people,
        "alice",
        "POST",
        org + "teams/ops/members/",
        {"username": "charlie", "role": "maintainer"},
    )
    assert added.json() == {"username": "charlie", "role": "maintainer"}
    # Removing charlie from the organisation takes him out of its teams.
    assert as_(client, people, "alice", "DELETE", org + "members/charlie/").status_code == 204
    assert as_(client, people, "alice", "GET", org + "teams/ops/members/").json()["results"] == []
    assert as_(client, people, "charlie", "GET", org).status_code == 404


def test_it_sets_and_removes_grants(client: Client, people: People) -> None:
    grants = "/api/repositories/acme/private/grants/"
    listed = as_(client, people, "alice", "GET", grants).json()["results"]
    assert {(g["subject_type"], g["subject"], g["level"]) for g in listed} == {
        ("team", "devs", "write"),
        ("robot", "acme+ci", "write"),
    }
    for kind, subject, level in (
        ("user", "charlie", "read"),
        ("robot", "ci", "admin"),
        ("user", "charlie", "write"),
    ):
        response = as_(
            client,
            people,
            "alice",
            "POST",
            grants,
            {"subject_type": kind, "subject": subject, "level": level},
        )
        assert response.status_code == 201
    assert RepositoryGrant.objects.get(user=people.charlie).level == Level.WRITE
    # charlie now sees the repository, with his level, and still not its grants.
    detail = as_(client, people, "charlie", "GET", "/api/repositories/acme/private/").json()
    assert detail["level"] == "write" and detail["namespace"] == "acme"
    assert as_(client, people, "charlie", "GET", grants).status_code == 403
    # The robot, now an administrator, may manage grants (a repository right).
    assert as_(client, people, "robot", "GET", grants).status_code == 200
    assert as_(client, people, "alice", "DELETE", grants + "user/charlie/").status_code == 204
    assert (
        as_(client, people, "charlie", "GET", "/api/repositories/acme/private/").status_code == 404
    )
    assert as_(client, people, "alice", "DELETE", grants + "group/x/").status_code == 404


def test_it_changes_visibility(client: Client, people: People) -> None:
    response = as_(
        client,
        people,
        "alice",
        "PATCH",
        "/api/repositories/alice/own/",
        {"visibility": "public", "description": "mine"},
    )
    assert response.status_code == 200
    assert response.json()["visibility"] == "public"
    assert as_(client, people, "charlie", "GET", "/api/repositories/alice/own/").status_code == 200
    bad = as_(
        client, people, "alice", "PATCH", "/api/repositories/alice/own/", {"visibility": "secret"}
    )
    assert bad.status_code == 400 and "visibility" in bad.json()
    assert Repository.objects.get(name="alice/own").visibility == "public"


def test_it_manages_default_grants(client: Client, people: People) -> None:
    url = "/api/orgs/acme/default-grants/"
    made = as_(
        client,
        people,
        "alice",
        "POST",
        url,
        {"subject_type": "robot", "subject": "acme+ci", "level": "read"},
    )
    assert made.status_code == 201
    assert made.json()["subject"] == "acme+ci" and made.json()["level"] == "read"
    bad = as_(
        client,
        people,
        "alice",
        "POST",
        url,
        {"subject_type": "team", "subject": "devs", "level": "none"},
    )
    assert bad.status_code == 400 and "level" in bad.json()
    listed = as_(client, people, "alice", "GET", url).json()["results"]
    assert [g["id"] for g in listed] == [made.json()["id"]]
    assert as_(client, people, "alice", "DELETE", f"{url}{made.json()['id']}/").status_code == 204
    assert not DefaultGrant.objects.exists()
    assert as_(client, people, "alice", "DELETE", f"{url}{made.json()['id']}/").status_code == 404


def test_it_manages_robots(client: Client, people: People) -> None:
    url = "/api/orgs/acme/robots/"
    made = as_(client, people, "alice", "POST", url, {"name": "deploy", "description": "d"})
    assert made.status_code == 201
    assert made.json()["created_by"] == "alice" and made.json()["disabled_at"] is None
    assert as_(client, people, "alice", "POST", url, {"name": "deploy"}).status_code == 409
    changed = as_(
        client, people, "alice", "PATCH", url + "deploy/", {"may_create_repositories": True}
    )
    assert changed.json()["may_create_repositories"] is True
    names = [r["name"] for r in as_(client, people, "alice", "GET", url).json()["results"]]
    assert names == ["ci", "deploy"]

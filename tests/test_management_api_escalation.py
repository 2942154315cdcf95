"""Privilege escalation attempts through the management API (cf. Harbor CVE-2019-16097)."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.models import Robot
from teams import actions
from teams.models import Membership, RepositoryGrant, Team, TeamMember
from tests.management_api import as_
from tests.people import People

pytestmark = pytest.mark.django_db

ORG = "/api/orgs/acme/"


def _role(people: People, username: str) -> str | None:
    return (
        Membership.objects.filter(organisation=people.acme, user__username=username)
        .values_list("role", flat=True)
        .first()
    )


def test_it_refuses_bob_making_himself_owner(client: Client, people: People) -> None:
    response = as_(client, people, "bob", "PATCH", ORG + "members/bob/", {"role": "owner"})
    assert response.status_code == 403
    assert "owners" in response.json()["detail"]
    response = as_(
        client, people, "bob", "POST", ORG + "members/", {"username": "bob", "role": "owner"}
    )
    assert response.status_code == 403
    assert _role(people, "bob") == "member"


def test_it_refuses_a_maintainer_raising_his_team_or_himself(
    client: Client, people: People
) -> None:
    actions.team_member_set(team=people.devs, user=people.bob, role=TeamMember.Role.MAINTAINER)
    team = ORG + "teams/devs/"
    ok = as_(client, people, "bob", "PATCH", team, {"description": "we build"})
    assert ok.status_code == 200
    response = as_(client, people, "bob", "PATCH", team, {"may_create_repositories": True})
    assert response.status_code == 403
    assert not Team.objects.get(pk=people.devs.pk).may_create_repositories
    # Maintainers add organisation members only: charlie is not one.
    response = as_(client, people, "bob", "POST", team + "members/", {"username": "charlie"})
    assert response.status_code == 403
    assert _role(people, "charlie") is None
    # And never become owners through their team.
    response = as_(client, people, "bob", "PATCH", ORG + "members/bob/", {"role": "owner"})
    assert response.status_code == 403
    # What they may do: make an organisation member a maintainer.
    actions.membership_set(organisation=people.acme, user=people.charlie, role="member")
    response = as_(
        client,
        people,
        "bob",
        "POST",
        team + "members/",
        {"username": "charlie", "role": "maintainer"},
    )
    assert response.status_code == 201
    assert _role(people, "charlie") == "member"


def test_it_refuses_an_admin_grant_from_a_writer(client: Client, people: People) -> None:
    for subject in ("bob", "charlie"):
        response = as_(
            client,
            people,
            "bob",
            "POST",
            "/api/repositories/acme/private/grants/",
            {"subject_type": "user", "subject": subject, "level": "admin"},
        )
        assert response.status_code == 403
    assert not RepositoryGrant.objects.filter(user__in=[people.bob, people.charlie]).exists()


def test_it_refuses_a_robot_granting_itself_admin(client: Client, people: People) -> None:
    response = as_(
        client,
        people,
        "robot",
        "POST",
        "/api/repositories/acme/private/grants/",
        {"subject_type": "robot", "subject": "ci", "level": "admin"},
    )
    assert response.status_code == 403
    assert RepositoryGrant.objects.get(robot=people.robot).level == 2


def test_it_refuses_tokens_made_with_a_token_or_a_robot(client: Client, people: People) -> None:
    body = {"name": "more", "scopes": [{"repository": "**", "actions": ["pull", "push"]}]}
    for who in ("robot", "alice-token"):
        response = as_(client, people, who, "POST", "/api/user/tokens/", body)
        assert response.status_code == 403, who
        assert "robots and access tokens" in response.json()["detail"]
        response = as_(client, people, who, "POST", ORG + "robots/ci/tokens/", {"name": "x"})
        assert response.status_code == 403, who
    assert people.robot.tokens.count() == 1
    assert not people.alice.access_tokens.filter(name="more").exists()


def test_it_shows_charlie_nothing_of_acme(client: Client, people: People) -> None:
    for url in (
        ORG,
        ORG + "members/",
        ORG + "members/alice/",
        ORG + "teams/",
        ORG + "teams/devs/",
        ORG + "teams/devs/members/",
        ORG + "robots/",
        ORG + "robots/ci/tokens/",
        ORG + "default-grants/",
        "/api/repositories/acme/private/",
        "/api/repositories/acme/private/grants/",
        "/api/repositories/alice/own/",
    ):
        response = as_(client, people, "charlie", "GET", url)
        assert response.status_code == 404, url
        assert "acme/private" not in response.content.decode() or "private" in url
    orgs = as_(client, people, "charlie", "GET", "/api/orgs/").json()
    assert orgs["results"] == []
    repos = as_(client, people, "charlie", "GET", "/api/repositories/").json()
    assert [r["name"] for r in repos["results"]] == ["acme/public"]


def test_it_takes_a_robots_organisation_from_the_url_only(client: Client, people: People) -> None:
    as_(client, people, "charlie", "POST", "/api/orgs/", {"name": "other"})
    response = as_(
        client,
        people,
        "alice",
        "POST",
        ORG + "robots/",
        {"name": "deploy", "organisation": "other", "may_create_repositories": True},
    )
    assert response.status_code == 201
    robot = Robot.objects.get(name="deploy")
    assert robot.organisation == people.acme
    assert response.json()["username"] == "acme+deploy"
    # And alice may not touch charlie's organisation's robots.
    response = as_(client, people, "alice", "POST", "/api/orgs/other/robots/", {"name": "x"})
    assert response.status_code == 404


def test_it_ignores_read_only_privilege_fields(client: Client, people: People) -> None:
    response = as_(
        client,
        people,
        "charlie",
        "POST",
        "/api/orgs/",
        {"name": "mine", "role": "member", "is_superuser": True, "created_at": "2000-01-01"},
    )
    assert response.status_code == 201
    assert response.json()["role"] == "owner"
    people.charlie.refresh_from_db()
    assert not people.charlie.is_superuser
    response = as_(
        client, people, "bob", "PATCH", "/api/repositories/acme/private/", {"level": "admin"}
    )
    assert response.status_code == 403


def test_it_grants_only_subjects_of_the_repositorys_organisation(
    client: Client, people: People
) -> None:
    as_(client, people, "charlie", "POST", "/api/orgs/", {"name": "other"})
    as_(client, people, "charlie", "POST", "/api/orgs/other/teams/", {"name": "crew"})
    as_(client, people, "charlie", "POST", "/api/orgs/other/robots/", {"name": "bot"})
    grants = "/api/repositories/acme/private/grants/"
    for kind, name in (("team", "crew"), ("robot", "other+bot"), ("robot", "bot")):
        response = as_(
            client,
            people,
            "alice",
            "POST",
            grants,
            {"subject_type": kind, "subject": name, "level": "read"},
        )
        assert response.status_code == 400, (kind, name)
        assert "subject" in response.json()
    response = as_(
        client,
        people,
        "alice",
        "POST",
        "/api/repositories/alice/own/grants/",
        {"subject_type": "team", "subject": "devs", "level": "read"},
    )
    assert response.status_code == 400


def test_it_keeps_an_owner(client: Client, people: People) -> None:
    response = as_(client, people, "alice", "PATCH", ORG + "members/alice/", {"role": "member"})
    assert response.status_code == 400
    assert "at least one owner" in str(response.json())
    response = as_(client, people, "alice", "DELETE", ORG + "members/alice/")
    assert response.status_code == 400
    assert _role(people, "alice") == "owner"


def test_it_stops_a_disabled_robot(client: Client, people: People) -> None:
    assert as_(client, people, "robot", "GET", "/api/repositories/acme/private/").status_code == 200
    response = as_(client, people, "alice", "DELETE", ORG + "robots/ci/")
    assert response.status_code == 200
    assert response.json()["disabled_at"] is not None
    assert as_(client, people, "robot", "GET", "/api/repositories/").status_code == 401
    response = as_(client, people, "alice", "POST", ORG + "robots/ci/tokens/", {"name": "again"})
    assert response.status_code == 400

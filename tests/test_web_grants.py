"""Repository grants (users, teams, robots) on the repository settings page and as the
organisation's default grants, and the editable team page: alice (acme's owner) may,
bob (acme member in devs, write on acme/private) may not, charlie sees nothing (404)."""

from __future__ import annotations

from typing import Any

import pytest

from audit.models import Event
from teams.models import DefaultGrant, Level, RepositoryGrant, Team, TeamMember
from tests.people import People, make_repository
from tests.test_web_pages import page, signed_in

pytestmark = pytest.mark.django_db

SETTINGS = "/r/acme/private/-/settings/"
TEAM = "/orgs/acme/teams/devs/"


def grant_form(kind: str, name: str, level: Level) -> dict[str, Any]:
    return {"form": "grant", "grant-kind": kind, "grant-name": name, "grant-level": int(level)}


# --- repository grants ----------------------------------------------------------------------


def test_it_lets_a_repository_admin_grant_a_user_a_robot_and_a_team(people: People) -> None:
    alice = signed_in(people.alice)
    ops = Team.objects.create(organisation=people.acme, name="ops")
    for kind, name, level in [
        ("user", "charlie", Level.READ),
        ("robot", "acme+ci", Level.ADMIN),
        ("team", "ops", Level.WRITE),
    ]:
        response = alice.post(SETTINGS, grant_form(kind, name, level))
        assert response.status_code == 302, response.content.decode()
    grants = RepositoryGrant.objects.filter(repository=people.private)
    assert grants.get(user=people.charlie).level == Level.READ
    assert grants.get(robot=people.robot).level == Level.ADMIN
    assert grants.get(team=ops).level == Level.WRITE
    assert Event.objects.filter(action="grant.set", repository="acme/private").count() >= 3
    html = page(alice, SETTINGS)
    assert "charlie" in html and "acme+ci" in html and "ops" in html and "Revoke" in html


def test_it_names_an_unknown_subject_next_to_the_field(people: People) -> None:
    alice = signed_in(people.alice)
    before = RepositoryGrant.objects.count()
    html = alice.post(SETTINGS, grant_form("team", "nope", Level.READ)).content.decode()
    assert "There is no team of that name in acme." in html
    assert 'aria-invalid="true"' in html
    html = alice.post(SETTINGS, grant_form("robot", "other+ci", Level.READ)).content.decode()
    assert "There is no robot of that name in acme." in html
    assert RepositoryGrant.objects.count() == before


def test_it_grants_only_users_on_a_personal_repository(people: People) -> None:
    alice = signed_in(people.alice)
    html = alice.post("/r/alice/own/-/settings/", grant_form("team", "devs", Level.READ))
    assert "There is no team of that name." in html.content.decode()
    alice.post("/r/alice/own/-/settings/", grant_form("user", "bob", Level.READ))
    assert RepositoryGrant.objects.get(repository=people.alice_own).user == people.bob


def test_it_asks_before_revoking_a_grant(people: People) -> None:
    alice = signed_in(people.alice)
    grant = RepositoryGrant.objects.get(repository=people.private, robot=people.robot)
    asked = alice.post(SETTINGS, {"form": "revoke-grant", "id": grant.pk})
    assert asked.status_code == 200
    assert "Yes, revoke the robot acme+ci" in asked.content.decode()
    assert RepositoryGrant.objects.filter(pk=grant.pk).exists()
    done = alice.post(SETTINGS, {"form": "revoke-grant", "id": grant.pk, "confirmed": "yes"})
    assert done.status_code == 302
    assert not RepositoryGrant.objects.filter(pk=grant.pk).exists()
    assert Event.objects.filter(action="grant.remove", repository="acme/private").exists()


def test_it_refuses_grants_to_bob_and_hides_the_page_from_charlie(people: People) -> None:
    grant = RepositoryGrant.objects.get(repository=people.private, team=people.devs)
    bob = signed_in(people.bob)
    assert bob.post(SETTINGS, grant_form("user", "bob", Level.ADMIN)).status_code == 403
    confirmed = {"form": "revoke-grant", "id": grant.pk, "confirmed": "yes"}
    assert bob.post(SETTINGS, confirmed).status_code == 403
    charlie = signed_in(people.charlie)
    assert charlie.get(SETTINGS).status_code == 404
    assert charlie.post(SETTINGS, grant_form("user", "charlie", Level.ADMIN)).status_code == 404
    assert RepositoryGrant.objects.get(pk=grant.pk).level == Level.WRITE
    assert not RepositoryGrant.objects.filter(user__in=[people.bob, people.charlie]).exists()


def test_it_revokes_only_the_pages_own_grants(people: People) -> None:
    other = make_repository("acme/other")
    foreign = RepositoryGrant.objects.create(repository=other, user=people.bob, level=Level.READ)
    alice = signed_in(people.alice)
    alice.post(SETTINGS, {"form": "revoke-grant", "id": foreign.pk, "confirmed": "yes"})
    assert RepositoryGrant.objects.filter(pk=foreign.pk).exists()


# --- default grants -------------------------------------------------------------------------


def test_it_adds_default_grants_for_users_and_robots(people: People) -> None:
    alice = signed_in(people.alice)
    for kind, name in [("user", "bob"), ("robot", "ci")]:
        alice.post(
            "/orgs/acme/",
            {
                "form": "default-grant",
                "default-kind": kind,
                "default-name": name,
                "default-level": 2,
            },
        )
    defaults = DefaultGrant.objects.filter(organisation=people.acme)
    assert defaults.get(user=people.bob).level == Level.WRITE
    assert defaults.get(robot=people.robot).level == Level.WRITE
    html = page(alice, "/orgs/acme/")
    assert "bob: write" in html and "robot acme+ci: write" in html


# --- teams ----------------------------------------------------------------------------------


def test_it_lets_an_owner_rename_and_describe_a_team(people: People) -> None:
    alice = signed_in(people.alice)
    edit = {"form": "edit", "edit-name": "developers", "edit-description": "They build."}
    response = alice.post(TEAM, edit)
    assert response.status_code == 302 and response["Location"] == "/orgs/acme/teams/developers/"
    people.devs.refresh_from_db()
    assert people.devs.name == "developers" and people.devs.description == "They build."
    assert "They build." in page(alice, "/orgs/acme/teams/developers/")
    event = Event.objects.filter(action="team.update").latest("id")
    assert event.details["before"]["name"] == "devs"
    assert event.details["after"]["name"] == "developers"


def test_it_says_a_team_name_is_taken_next_to_the_field(people: People) -> None:
    Team.objects.create(organisation=people.acme, name="ops")
    html = signed_in(people.alice).post(TEAM, {"form": "edit", "edit-name": "ops"})
    assert "acme already has a team named &#x27;ops&#x27;" in html.content.decode()
    people.devs.refresh_from_db()
    assert people.devs.name == "devs"


def test_it_asks_before_deleting_a_team(people: People) -> None:
    alice = signed_in(people.alice)
    asked = alice.post(TEAM, {"form": "delete"})
    assert "Yes, delete the team devs" in asked.content.decode()
    assert Team.objects.filter(pk=people.devs.pk).exists()
    done = alice.post(TEAM, {"form": "delete", "confirmed": "yes"})
    assert done.status_code == 302 and done["Location"] == "/orgs/acme/"
    assert not Team.objects.filter(pk=people.devs.pk).exists()
    assert not RepositoryGrant.objects.filter(team_id=people.devs.pk).exists()
    assert Event.objects.filter(action="team.delete").exists()


def test_it_lets_a_manager_revoke_a_teams_grant_after_asking(people: People) -> None:
    alice = signed_in(people.alice)
    grant = RepositoryGrant.objects.get(team=people.devs)
    asked = alice.post(TEAM, {"form": "revoke-grant", "id": grant.pk})
    assert "Yes, revoke the team devs" in asked.content.decode()
    alice.post(TEAM, {"form": "revoke-grant", "id": grant.pk, "confirmed": "yes"})
    assert not RepositoryGrant.objects.filter(pk=grant.pk).exists()


def test_it_lets_a_maintainer_who_is_no_repository_admin_revoke_nothing(people: People) -> None:
    TeamMember.objects.filter(team=people.devs, user=people.bob).update(role="maintainer")
    bob = signed_in(people.bob)
    grant = RepositoryGrant.objects.get(team=people.devs)
    bob.post(TEAM, {"form": "revoke-grant", "id": grant.pk, "confirmed": "yes"})
    assert RepositoryGrant.objects.filter(pk=grant.pk).exists()
    html = page(bob, TEAM)
    assert "Delete the team" in html and "Save team" in html


@pytest.mark.parametrize(
    "form",
    [
        {"form": "edit", "edit-name": "mine"},
        {"form": "delete", "confirmed": "yes"},
        {"form": "member", "member-username": "charlie"},
        {"form": "remove-member", "username": "bob", "confirmed": "yes"},
    ],
)
def test_it_refuses_team_changes_to_a_member_and_hides_them_from_charlie(
    people: People, form: dict[str, str]
) -> None:
    assert signed_in(people.bob).post(TEAM, form).status_code == 403
    assert signed_in(people.charlie).post(TEAM, form).status_code == 404
    people.devs.refresh_from_db()
    assert people.devs.name == "devs"
    assert list(people.devs.members.values_list("user__username", flat=True)) == ["bob"]
    html = page(signed_in(people.bob), TEAM)
    assert "Save team" not in html and "Delete the team" not in html

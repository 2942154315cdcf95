"""The permission function, table-driven: every role x action x visibility."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.actions import robot_disable, token_create
from teams import actions
from teams.models import Level
from teams.permissions import Actor, allowed_actions, may_create_repository, visible_repositories
from tests.people import People

pytestmark = pytest.mark.django_db

# (who, repository) -> the actions they may take
TABLE = [
    ("alice", "acme/private", {"pull", "push", "delete"}),  # organisation owner
    ("alice", "acme/public", {"pull", "push", "delete"}),
    ("alice", "alice/own", {"pull", "push", "delete"}),  # her namespace
    ("bob", "acme/private", {"pull", "push"}),  # team devs has write
    ("bob", "acme/public", {"pull"}),  # public: anyone may pull
    ("bob", "alice/own", set()),
    ("charlie", "acme/private", set()),
    ("charlie", "acme/public", {"pull"}),
    ("charlie", "alice/own", set()),
    ("anonymous", "acme/private", set()),
    ("anonymous", "acme/public", {"pull"}),
    ("anonymous", "alice/own", set()),
    ("robot", "acme/private", {"pull", "push"}),
    ("robot", "acme/public", {"pull"}),
    ("robot", "alice/own", set()),
    ("admin", "alice/own", {"pull", "push", "delete"}),  # site administrator
]


@pytest.mark.parametrize(("who", "name", "expected"), TABLE)
def test_it_decides_each_role_action_and_visibility(
    people: People, who: str, name: str, expected: set[str]
) -> None:
    assert allowed_actions(people.actor(who), name) == expected


@pytest.mark.parametrize(
    ("who", "expected"),
    [
        ("alice", {"acme/private", "acme/public", "alice/own"}),
        ("bob", {"acme/private", "acme/public"}),
        ("charlie", {"acme/public"}),
        ("anonymous", {"acme/public"}),
        ("robot", {"acme/private", "acme/public"}),
        ("admin", {"acme/private", "acme/public", "alice/own"}),
    ],
)
def test_it_lists_only_what_each_may_see(people: People, who: str, expected: set[str]) -> None:
    names = set(visible_repositories(people.actor(who)).values_list("name", flat=True))
    assert names == expected


@pytest.mark.parametrize(
    ("who", "name", "expected"),
    [
        ("alice", "acme/new", True),
        ("alice", "alice/new", True),
        ("bob", "acme/new", False),  # devs may not create repositories
        ("bob", "bob/new", True),
        ("charlie", "alice/new", False),
        ("charlie", "acme/new", False),
        ("anonymous", "acme/new", False),
        ("robot", "acme/new", False),
        ("admin", "anything/new", True),
        ("alice", "toplevel", False),  # no namespace: site administrators only
    ],
)
def test_it_decides_who_may_create_repositories(
    people: People, who: str, name: str, expected: bool
) -> None:
    assert may_create_repository(people.actor(who), name) is expected


def test_it_lets_a_team_that_may_create_push_new_repositories(people: People) -> None:
    people.devs.may_create_repositories = True
    people.devs.save()
    assert allowed_actions(people.actor("bob"), "acme/new") == {"pull", "push"}


def test_it_never_lets_a_token_grant_more_than_its_owner_has(people: People) -> None:
    token, _ = token_create(
        name="wide",
        user=people.bob,
        scopes=[{"repository": "**", "actions": ["pull", "push", "delete"]}],
    )
    actor = Actor(user=people.bob, token=token, method="token")
    assert allowed_actions(actor, "acme/private") == {"pull", "push"}
    assert allowed_actions(actor, "alice/own") == set()


def test_it_caps_a_token_at_its_scopes(people: People) -> None:
    token, _ = token_create(
        name="pull-only", user=people.alice, scopes=[{"repository": "acme/*", "actions": ["pull"]}]
    )
    actor = Actor(user=people.alice, token=token, method="token")
    assert allowed_actions(actor, "acme/private") == {"pull"}
    assert allowed_actions(actor, "alice/own") == set()
    assert set(visible_repositories(actor).values_list("name", flat=True)) == {
        "acme/private",
        "acme/public",
    }


def test_it_gives_a_disabled_robot_nothing_private(people: People) -> None:
    robot_disable(robot=people.robot)
    assert allowed_actions(people.actor("robot"), "acme/private") == set()


def test_it_gives_an_inactive_user_nothing_private(people: People) -> None:
    people.bob.is_active = False
    people.bob.save()
    assert allowed_actions(people.actor("bob"), "acme/private") == set()
    assert allowed_actions(people.actor("bob"), "acme/public") == {"pull"}


def test_it_applies_default_grants_and_records_the_creator(people: People) -> None:
    from registry.models import Repository

    actions.default_grant_add(organisation=people.acme, level=Level.READ, team=people.devs)
    repo = Repository.objects.create(name="acme/fresh")
    actions.repository_created(repository=repo, actor=people.actor("alice"))
    repo.refresh_from_db()
    assert repo.namespace is not None and repo.namespace.name == "acme"
    assert allowed_actions(people.actor("bob"), "acme/fresh") == {"pull"}
    assert allowed_actions(people.actor("charlie"), "acme/fresh") == set()


def test_it_expires_tokens(people: People) -> None:
    token, _ = token_create(
        name="short",
        user=people.alice,
        scopes=[{"repository": "**", "actions": ["pull"]}],
        expires_at=timezone.now() + timedelta(seconds=1),
    )
    token.expires_at = timezone.now() - timedelta(seconds=1)
    token.save()
    assert not token.is_active

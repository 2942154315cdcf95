"""Sign-ins, tokens, robots, second factors and collaboration writes leave their events."""

from __future__ import annotations

import json
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
from allauth.mfa import signals as mfa_signals
from django.contrib.auth import authenticate
from django.core.exceptions import ValidationError
from django.test import Client

from accounts import actions as account_actions
from audit.context import RequestContext, _current
from teams import actions
from teams.models import DefaultGrant, Level
from teams.permissions import Actor
from tests.audit_support import assert_fields, events_after, mark
from tests.conftest import basic_auth
from tests.people import PASSWORD, People, make_repository

pytestmark = pytest.mark.django_db


def as_user(who: str, password: str = PASSWORD) -> Client:
    return Client(HTTP_AUTHORIZATION=basic_auth(who, password))


# --- the token endpoint ------------------------------------------------------------------------


def test_it_records_scopes_asked_and_granted_at_the_token_endpoint(people: People) -> None:
    since = mark()
    scopes = ["repository:acme/private:pull,push,delete", "repository:alice/own:pull"]
    response = as_user("bob").get("/auth/token", {"service": "hub", "scope": scopes})
    assert response.status_code == 200
    [event] = events_after(since)
    assert_fields(
        event,
        {
            "action": "auth.token_issued",
            "actor_name": "bob",
            "auth_method": "password",
            "chain": "site",
            "details": {
                "scopes_asked": scopes,
                "granted": [
                    {"type": "repository", "name": "acme/private", "actions": ["pull", "push"]},
                    {"type": "repository", "name": "alice/own", "actions": []},
                ],
            },
        },
    )


def test_it_records_a_refused_token_request(people: People) -> None:
    since = mark()
    response = as_user("bob", "wrong").get(
        "/auth/token", {"service": "hub", "scope": "repository:acme/private:pull"}
    )
    assert response.status_code == 401
    [event] = events_after(since)
    assert_fields(
        event,
        {
            "action": "request.denied",
            "outcome": "failure",
            "actor_kind": "anonymous",
            "details": {
                "status": 401,
                "username": "bob",
                "scopes_asked": ["repository:acme/private:pull"],
            },
        },
    )


def test_it_records_the_refresh_token_the_endpoint_makes(people: People) -> None:
    since = mark()
    response = Client().post(
        "/auth/token",
        {
            "grant_type": "password",
            "username": "bob",
            "password": PASSWORD,
            "service": "hub",
            "access_type": "offline",
            "client_id": "docker",
        },
    )
    assert response.status_code == 200 and json.loads(response.content)["refresh_token"]
    created, issued = events_after(since)
    assert_fields(created, {"action": "token.create", "actor_name": "bob", "token_id": None})
    assert created.details["owner"] == "bob" and created.details["token_id"]
    assert_fields(issued, {"action": "auth.token_issued", "details": {"refresh_token": True}})


# --- the management API: tokens and robots -----------------------------------------------------


def test_it_records_personal_tokens_made_and_revoked(people: People) -> None:
    alice = as_user("alice")
    since = mark()
    response = alice.post(
        "/api/user/tokens/",
        {"name": "ci", "scopes": [{"repository": "acme/*", "actions": ["pull"]}]},
        content_type="application/json",
    )
    assert response.status_code == 201
    token_id = json.loads(response.content)["id"]
    assert alice.delete(f"/api/user/tokens/{token_id}/").status_code == 204
    created, revoked = events_after(since)
    for event, action in ((created, "token.create"), (revoked, "token.revoke")):
        assert_fields(
            event,
            {
                "action": action,
                "actor_name": "alice",
                "chain": "site",
                "details": {"token_id": token_id, "name": "ci", "owner": "alice"},
            },
        )
    assert created.details["scopes"] == [{"repository": "acme/*", "actions": ["pull"]}]


def test_it_records_robots_made_and_disabled(people: People) -> None:
    alice = as_user("alice")
    since = mark()
    response = alice.post("/api/orgs/acme/robots/", {"name": "deploy"}, "application/json")
    assert response.status_code == 201
    assert alice.delete("/api/orgs/acme/robots/deploy/").status_code == 200
    created, disabled = events_after(since)
    assert_fields(
        created,
        {"action": "robot.create", "chain": "org:acme", "details": {"robot": "acme+deploy"}},
    )
    assert_fields(disabled, {"action": "robot.disable", "organisation": "acme"})
    assert disabled.details["before"] == {"disabled_at": None}
    assert disabled.details["after"]["disabled_at"]


def test_it_records_403s_of_the_management_api(people: People) -> None:
    since = mark()
    response = as_user("bob").post("/api/orgs/acme/robots/", {"name": "x"}, "application/json")
    assert response.status_code == 403
    [event] = events_after(since)
    assert_fields(
        event,
        {
            "action": "request.denied",
            "outcome": "denied",
            "actor_name": "bob",
            "chain": "org:acme",
            "details": {"status": 403, "method": "POST"},
        },
    )


# --- sign-in, sign-out, second factors ---------------------------------------------------------


def test_it_records_sign_ins_failures_and_sign_outs(people: People) -> None:
    client = Client()
    since = mark()
    assert client.login(username="bob", password=PASSWORD)
    client.logout()
    assert authenticate(username="bob", password="wrong") is None
    login, logout, failed = events_after(since)
    assert_fields(login, {"action": "auth.login", "actor_name": "bob", "chain": "site"})
    assert_fields(logout, {"action": "auth.logout", "actor_name": "bob"})
    assert_fields(
        failed,
        {"action": "auth.login_failed", "outcome": "failure", "details": {"username": "bob"}},
    )


def test_it_records_second_factors_added_and_removed(people: People) -> None:
    authenticator = SimpleNamespace(type="totp", pk=7)
    since = mark()
    for signal in (mfa_signals.authenticator_added, mfa_signals.authenticator_removed):
        signal.send(sender=None, request=None, user=people.bob, authenticator=authenticator)
    added, removed = events_after(since)
    assert_fields(added, {"action": "mfa.enable", "actor_name": "bob", "details": {"type": "totp"}})
    assert_fields(removed, {"action": "mfa.disable", "details": {"authenticator_id": 7}})


# --- collaboration: teams.actions, with before and after ---------------------------------------

Step = Callable[[People], Any]

COLLABORATION: list[tuple[str, Step, dict[str, Any]]] = [
    (
        "org.create",
        lambda p: actions.organisation_create(name="globex", owner=p.bob, display_name="G"),
        {
            "chain": "org:globex",
            "organisation": "globex",
            "details": {"owner": "bob", "after": {"display_name": "G", "description": ""}},
        },
    ),
    (
        "org.update",
        lambda p: actions.organisation_update(organisation=p.acme, description="new"),
        {
            "details": {
                "before": {"display_name": "", "description": ""},
                "after": {"display_name": "", "description": "new"},
            }
        },
    ),
    (
        "member.set",
        lambda p: actions.membership_set(organisation=p.acme, user=p.bob, role="owner"),
        {"details": {"user": "bob", "before": {"role": "member"}, "after": {"role": "owner"}}},
    ),
    (
        "member.remove",
        lambda p: actions.membership_remove(organisation=p.acme, user=p.bob),
        {"details": {"user": "bob", "before": {"role": "member", "teams": ["devs"]}}},
    ),
    (
        "team.create",
        lambda p: actions.team_create(organisation=p.acme, name="ops", may_create=True),
        {"details": {"team": "ops", "after": {"description": "", "may_create": True}}},
    ),
    (
        "team.update",
        lambda p: actions.team_update(team=p.devs, description="developers"),
        {"details": {"team": "devs", "before": {"description": "", "may_create": False}}},
    ),
    (
        "team.delete",
        lambda p: actions.team_delete(team=p.devs),
        {
            "details": {
                "team": "devs",
                "before": {"description": "", "may_create": False, "members": ["bob"]},
            }
        },
    ),
    (
        "team_member.set",
        lambda p: actions.team_member_set(team=p.devs, user=p.bob, role="maintainer"),
        {
            "details": {
                "team": "devs",
                "user": "bob",
                "before": {"role": "member"},
                "after": {"role": "maintainer"},
            }
        },
    ),
    (
        "team_member.remove",
        lambda p: actions.team_member_remove(team=p.devs, user=p.bob),
        {"details": {"team": "devs", "user": "bob", "before": {"role": "member"}}},
    ),
    (
        "grant.set",
        lambda p: actions.grant_set(repository=p.private, level=Level.ADMIN, team=p.devs),
        {
            "repository": "acme/private",
            "details": {
                "subject": {"team": "devs"},
                "before": {"level": "write"},
                "after": {"level": "admin"},
            },
        },
    ),
    (
        "grant.remove",
        lambda p: actions.grant_set(repository=p.private, level=Level.NONE, robot=p.robot),
        {
            "repository": "acme/private",
            "details": {
                "subject": {"robot": "acme+ci"},
                "before": {"level": "write"},
                "after": None,
            },
        },
    ),
    (
        "default_grant.add",
        lambda p: actions.default_grant_add(organisation=p.acme, level=Level.READ, team=p.devs),
        {"details": {"subject": {"team": "devs"}, "after": {"level": "read"}}},
    ),
    (
        "default_grant.remove",
        lambda p: actions.default_grant_remove(
            default_grant=DefaultGrant.objects.create(organisation=p.acme, level=1, user=p.bob)
        ),
        {"details": {"subject": {"user": "bob"}, "before": {"level": "read"}}},
    ),
    (
        "repository.update",
        lambda p: actions.repository_update(repository=p.private, visibility="public"),
        {
            "repository": "acme/private",
            "details": {
                "before": {"visibility": "private", "description": ""},
                "after": {"visibility": "public", "description": ""},
            },
        },
    ),
    (
        "org.delete",
        lambda p: actions.organisation_delete(
            organisation=actions.organisation_create(name="initech", owner=p.bob)
        ),
        {"chain": "org:initech", "organisation": "initech"},
    ),
]


@pytest.mark.parametrize(
    ("action", "step", "expected"), COLLABORATION, ids=[c[0] for c in COLLABORATION]
)
def test_it_records_each_collaboration_change(
    people: People, action: str, step: Step, expected: dict[str, Any]
) -> None:
    ctx = RequestContext(
        None, "rid-1", "192.0.2.1", "tests", Actor(user=people.alice, method="session")
    )
    token = _current.set(ctx)
    try:
        since = mark()
        step(people)
    finally:
        _current.reset(token)
    events = [e for e in events_after(since) if e.action == action]
    assert len(events) == 1, [e.action for e in events_after(since)]
    assert_fields(
        events[0],
        {
            "chain": "org:acme",
            "organisation": "acme",
            "actor_name": "alice",
            "auth_method": "session",
            "client_address": "192.0.2.1",
            "request_id": "rid-1",
            **expected,
        },
    )


def test_it_records_nothing_when_a_collaboration_change_fails(people: People) -> None:
    make_repository("acme/kept")
    since = mark()
    with pytest.raises(ValidationError):
        actions.organisation_delete(organisation=people.acme)
    with pytest.raises(ValidationError):
        actions.repository_update(repository=people.private, visibility="secret")
    assert events_after(since) == []


def test_it_records_changes_made_outside_a_request_as_the_system(people: People) -> None:
    since = mark()
    account_actions.robot_disable(robot=people.robot)
    [event] = events_after(since)
    assert_fields(event, {"actor_kind": "anonymous", "actor_name": "system", "request_id": ""})


def test_it_records_robot_changes_with_before_and_after(people: People) -> None:
    since = mark()
    account_actions.robot_update(robot=people.robot, may_create=True)
    [event] = events_after(since)
    assert_fields(event, {"action": "robot.update", "chain": "org:acme"})
    assert event.details["before"]["may_create"] is False
    assert event.details["after"]["may_create"] is True

"""The privilege boundary of configuration documents, and the audit events of an apply."""

from __future__ import annotations

from typing import Any

import pytest

from accounts.actions import robot_create
from audit.models import Event
from teams import actions
from teams.config.changes import Applier
from teams.config.document import ConfigError
from teams.models import ConfigRevision, Level, Membership
from teams.permissions import Actor
from tests.config_support import apply_of, as_user, exported, plan_of


def _refused(data: Any, applier: Applier, **options: Any) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        apply_of(data, applier, **options)
    return [str(p) for p in caught.value.problems]


def test_it_refuses_a_member_who_is_not_an_owner(people: Any) -> None:
    data = exported(people.acme)
    data["description"] = "bob was here"
    assert _refused(data, as_user(people.bob)) == [
        "line 2, path organisation: bob may not administer an organisation named 'acme'"
    ]
    people.acme.refresh_from_db()
    assert people.acme.description == ""


def test_it_keeps_an_owner_of_one_organisation_out_of_another(people: Any) -> None:
    actions.organisation_create(name="globex", owner=people.charlie)
    data = exported(people.acme)
    data["organisation"] = "globex"
    data["members"] = [{"user": "alice", "role": "owner"}]
    # Same message as for an organisation that does not exist: nothing leaks.
    assert _refused(data, as_user(people.alice)) == [
        "line 2, path organisation: alice may not administer an organisation named 'globex'"
    ]
    assert not Membership.objects.filter(organisation__name="globex", user=people.alice).exists()


def test_it_refuses_repositories_of_another_namespace(people: Any) -> None:
    data = {
        "version": 1,
        "organisation": "acme",
        "grants": [{"repository": "alice/own", "user": "bob", "level": "admin"}],
    }
    assert _refused(data, as_user(people.alice)) == [
        "line 4, path grants[0].repository: 'alice/own' is outside the organisation's "
        "namespace acme/"
    ]


def test_it_leaves_quotas_to_site_administrators(people: Any) -> None:
    data = {"version": 1, "organisation": "acme", "quota_bytes": 10**12}
    assert _refused(data, as_user(people.alice)) == [
        "line 3, path quota_bytes: only site administrators set quotas"
    ]
    admin = Applier(actor=Actor(user=people.admin, method="password"))
    assert [c.kind for c in apply_of(data, admin).changes] == ["quota"]


def test_it_lets_an_admin_robot_apply_but_not_make_owners(people: Any) -> None:
    actions.robot_admin_set(robot=people.robot, admin=True)
    robot = Applier(actor=Actor(robot=people.robot, method="robot"))
    data = exported(people.acme)
    data["teams"].append({"name": "ops"})
    assert [c.key for c in apply_of(data, robot).changes] == ["ops"]
    data["members"].append({"user": "charlie", "role": "owner"})
    assert _refused(data, robot) == [
        "line 10, path members[2]: only an owner may make or unmake owners (charlie)"
    ]


def test_it_refuses_a_robot_that_is_not_an_admin(people: Any) -> None:
    other = robot_create(organisation=people.acme, name="other")
    actions.grant_set(repository=people.private, level=Level.ADMIN, robot=other)
    robot = Applier(actor=Actor(robot=other, method="robot"))
    data = {"version": 1, "organisation": "acme", "teams": [{"name": "ops"}]}
    assert _refused(data, robot) == [
        "line 2, path organisation: acme+other may not administer an organisation named 'acme'"
    ]


def test_it_records_every_change_with_the_document_hash_and_the_actor(people: Any) -> None:
    data = exported(people.acme)
    data["description"] = "audited"
    data["teams"].append({"name": "ops", "members": [{"user": "charlie"}]})
    first = Event.objects.order_by("-id").values_list("id", flat=True).first()
    plan = apply_of(data, as_user(people.alice))
    events = list(Event.objects.filter(id__gt=first).order_by("id"))
    assert [e.action for e in events] == [
        "org.update",
        "team.create",
        "member.set",
        "team_member.set",
        "config.apply",
    ]
    assert {e.details["config_sha256"] for e in events} == {plan.document.sha256}
    assert {(e.actor_kind, e.actor_name, e.organisation) for e in events} == {
        ("user", "alice", "acme")
    }
    assert events[-1].details["changes"] == {"add": 2, "change": 1, "remove": 0}
    revision = ConfigRevision.objects.get()
    assert (revision.sha256, revision.applied_by_name, revision.applied_by_kind) == (
        plan.document.sha256,
        "alice",
        "user",
    )
    assert "team:ops" in revision.managed


def test_it_plans_without_recording_anything(people: Any) -> None:
    data = exported(people.acme)
    data["description"] = "only planned"
    before = Event.objects.count()
    assert len(plan_of(data, as_user(people.alice)).changes) == 1
    assert Event.objects.count() == before


def test_it_keeps_the_last_owner_whichever_way_asked(people: Any, client: Any) -> None:
    from django.core.exceptions import ValidationError

    from tests.management_api import credentials

    with pytest.raises(ValidationError, match="keeps at least one owner"):
        actions.membership_set(organisation=people.acme, user=people.alice, role="member")
    with pytest.raises(ValidationError, match="keeps at least one owner"):
        actions.membership_remove(organisation=people.acme, user=people.alice)
    response = client.delete("/api/orgs/acme/members/alice/", **credentials(people, "alice"))
    assert response.status_code == 400
    assert response.json() == {"role": ["an organisation keeps at least one owner"]}
    client.force_login(people.alice)
    page = client.post(
        "/orgs/acme/",
        {"form": "remove-member", "username": "alice", "confirmed": "yes"},
        follow=True,
    )
    assert "The last owner cannot leave" in page.content.decode()
    assert Membership.objects.get(user=people.alice).role == "owner"
    # With a second owner, the first may step down.
    actions.membership_set(organisation=people.acme, user=people.bob, role="owner")
    actions.membership_set(organisation=people.acme, user=people.alice, role="member")
    assert Membership.objects.get(user=people.alice).role == "member"

"""Export, apply, plan: an organisation's document round trip, and determinism."""

from __future__ import annotations

from typing import Any

from registry.policies.actions import policy_set, quota_set
from registry.webhooks.actions import webhook_create
from teams import actions
from teams.config.export import export_text
from teams.models import ConfigRevision, Level, Namespace
from tests.config_support import apply_of, as_user, dump, exported, plan_of


def _busy(people: Any) -> None:
    """Every kind of thing a document can say, set by hand."""
    actions.default_grant_add(organisation=people.acme, level=Level.READ, team=people.devs)
    policy_set(organisation=people.acme, values={"immutable_tags": ["v*"]})
    policy_set(repository=people.private, values={"keep_last": 5, "retention_enabled": True})
    quota_set(namespace=Namespace.objects.get(name="acme"), limit_bytes=10_000)
    webhook_create(url="https://93.184.215.14/hook", events=["push"], organisation=people.acme)
    webhook_create(url="https://93.184.215.14/r", events=["pull"], repository=people.public)
    actions.robot_admin_set(robot=people.robot, admin=True)


def test_it_exports_applies_and_then_plans_nothing(people: Any) -> None:
    _busy(people)
    text = export_text(people.acme)
    alice = as_user(people.alice)
    assert plan_of(text, alice).changes == []
    assert apply_of(text, alice).changes == []
    assert plan_of(text, alice, prune=True).changes == []
    # Nothing changed, so no revision was recorded either.
    assert not ConfigRevision.objects.exists()


def test_it_exports_every_section_sorted(people: Any) -> None:
    _busy(people)
    actions.team_create(organisation=people.acme, name="alpha")
    data = exported(people.acme)
    assert [t["name"] for t in data["teams"]] == ["alpha", "devs"]
    assert data["members"] == [
        {"user": "alice", "role": "owner"},
        {"user": "bob", "role": "member"},
    ]
    assert data["robots"] == [
        {
            "name": "ci",
            "description": "",
            "may_create_repositories": False,
            "organisation_admin": True,
        }
    ]
    assert data["grants"] == [
        {"repository": "acme/private", "robot": "ci", "level": "write"},
        {"repository": "acme/private", "team": "devs", "level": "write"},
    ]
    assert data["default_grants"] == [{"team": "devs", "level": "read"}]
    assert data["policy"]["immutable_tags"] == ["v*"]
    assert data["quota_bytes"] == 10_000
    assert [h["url"] for h in data["webhooks"]] == [
        "https://93.184.215.14/hook",
        "https://93.184.215.14/r",
    ]
    assert all("secret" not in h for h in data["webhooks"])
    private = next(r for r in data["repositories"] if r["name"] == "acme/private")
    assert private["policy"]["retention"]["keep_last"] == 5


def test_it_exports_the_same_text_twice(people: Any) -> None:
    _busy(people)
    assert export_text(people.acme) == export_text(people.acme)


def test_it_leaves_alone_what_the_document_leaves_out(people: Any) -> None:
    alice = as_user(people.alice)
    minimal = {"version": 1, "organisation": "acme"}
    assert plan_of(minimal, alice, prune=True).changes == []
    partial = exported(people.acme)
    del partial["teams"][0]["description"]
    partial["teams"][0].pop("members")
    assert plan_of(dump(partial), alice, prune=True).changes == []


def test_it_accepts_the_readme_example() -> None:
    from pathlib import Path

    from teams.config.document import parse

    readme = (Path(__file__).parent.parent / "README.md").read_text()
    section = readme.split("## Collaboration as code", 1)[1]
    example = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    document = parse(example)
    assert document.organisation == "acme"
    assert document.data["webhooks"][0]["secret"] == {"env": "HUB_CONFIG_SECRET_CI"}


def test_it_round_trips_deactivated_members_and_disabled_robots(people: Any) -> None:
    from accounts.actions import robot_disable

    actions.default_grant_add(organisation=people.acme, level=Level.READ, robot=people.robot)
    robot_disable(robot=people.robot)
    people.bob.is_active = False
    people.bob.save()
    text = export_text(people.acme)
    assert "ci" not in [r["name"] for r in exported(people.acme)["robots"]]
    assert plan_of(text, as_user(people.alice), prune=True).changes == []

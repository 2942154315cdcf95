"""Plan and apply of every kind of change a document can make, and prune."""

from __future__ import annotations

from typing import Any

import pytest

from accounts.models import Robot
from registry.models import Repository
from registry.policies.models import Policy, Quota
from registry.webhooks.models import Webhook
from teams.config.changes import Applier
from teams.models import (
    DefaultGrant,
    Level,
    Membership,
    OrganisationAdminRobot,
    RepositoryGrant,
    Team,
    TeamMember,
)
from tests.config_support import apply_of, as_user, exported, plan_of, summary


@pytest.fixture
def doc(people: Any) -> dict[str, Any]:
    return exported(people.acme)


def _both(people: Any, data: dict[str, Any], **options: Any) -> list[tuple[str, str, str]]:
    """Plan (which changes nothing), apply, then plan again (nothing left)."""
    alice = as_user(people.alice)
    planned = summary(plan_of(data, alice, **options))
    applied = summary(apply_of(data, alice, **options))
    assert applied == planned
    assert plan_of(data, alice, **options).changes == []
    return planned


def test_it_changes_the_organisation_and_its_members(people: Any, doc: dict[str, Any]) -> None:
    doc["description"] = "Makers of everything"
    doc["members"].append({"user": "charlie@example.com", "role": "owner"})
    doc["members"][1]["role"] = "owner"  # bob
    plan = plan_of(doc, as_user(people.alice))
    assert summary(plan) == [
        ("change", "organisation", "acme"),
        ("change", "member", "bob"),
        ("add", "member", "charlie"),
    ]
    assert plan.changes[1].before == {"role": "member"}
    assert plan.changes[1].after == {"role": "owner"}
    assert not Membership.objects.filter(user=people.charlie).exists()  # a plan changes nothing
    _both(people, doc)
    people.acme.refresh_from_db()
    assert people.acme.description == "Makers of everything"
    roles = dict(Membership.objects.values_list("user__username", "role"))
    assert roles == {"alice": "owner", "bob": "owner", "charlie": "owner"}


def test_it_adds_changes_and_fills_teams(people: Any, doc: dict[str, Any]) -> None:
    doc["teams"][0]["description"] = "Developers"
    doc["teams"][0]["members"][0]["role"] = "maintainer"
    doc["teams"].append(
        {"name": "ops", "may_create_repositories": True, "members": [{"user": "charlie"}]}
    )
    assert _both(people, doc) == [
        ("change", "team", "devs"),
        ("add", "team", "ops"),
        ("change", "team_member", "devs/bob"),
        ("add", "team_member", "ops/charlie"),
    ]
    ops = Team.objects.get(name="ops")
    assert ops.may_create_repositories
    assert TeamMember.objects.get(team=ops).user == people.charlie
    assert TeamMember.objects.get(team=people.devs).role == "maintainer"
    # Joining a team made charlie a member of the organisation.
    assert Membership.objects.filter(user=people.charlie, role="member").exists()


def test_it_adds_changes_and_makes_admin_robots(people: Any, doc: dict[str, Any]) -> None:
    doc["robots"][0]["description"] = "The CI"
    doc["robots"].append({"name": "deploy", "organisation_admin": True})
    assert _both(people, doc) == [("change", "robot", "ci"), ("add", "robot", "deploy")]
    deploy = Robot.objects.get(name="deploy")
    assert OrganisationAdminRobot.objects.filter(robot=deploy).exists()
    assert Robot.objects.get(name="ci").description == "The CI"


def test_it_creates_and_changes_repositories_and_their_policies(
    people: Any, doc: dict[str, Any]
) -> None:
    public = next(r for r in doc["repositories"] if r["name"] == "acme/public")
    public["visibility"] = "private"
    public["policy"] = {"immutable_tags": ["release-*"], "retention": None}
    doc["repositories"].append(
        {"name": "acme/new/app", "description": "New", "visibility": "public"}
    )
    assert _both(people, doc) == [
        ("change", "repository", "acme/public"),
        ("add", "repository", "acme/new/app"),
        ("change", "repository_policy", "acme/public"),
    ]
    new = Repository.objects.get(name="acme/new/app")
    assert (new.description, new.visibility, new.namespace.name) == ("New", "public", "acme")
    assert Repository.objects.get(name="acme/public").visibility == "private"
    assert Policy.objects.get(repository__name="acme/public").immutable_tags == ["release-*"]


def test_it_sets_the_organisation_policy_and_the_quota(people: Any, doc: dict[str, Any]) -> None:
    doc["policy"] = {
        "immutable_tags": ["v*"],
        "retention": {"enabled": True, "keep_last": 3, "keep_patterns": ["latest"]},
    }
    doc["quota_bytes"] = 1_000_000
    operator = Applier.command_line("ops")
    planned = summary(plan_of(doc, operator))
    assert planned == [("change", "policy", "acme"), ("change", "quota", "acme")]
    assert summary(apply_of(doc, operator)) == planned
    policy = Policy.objects.get(organisation=people.acme)
    assert (policy.keep_last, policy.retention_enabled, policy.keep_patterns) == (
        3,
        True,
        ["latest"],
    )
    assert Quota.objects.get(namespace__name="acme").limit_bytes == 1_000_000
    doc["quota_bytes"] = None
    assert summary(apply_of(doc, operator)) == [("change", "quota", "acme")]
    assert not Quota.objects.exists()


def test_it_grants_by_name_and_by_pattern(people: Any, doc: dict[str, Any]) -> None:
    doc["grants"] = [
        {"repository": "acme/*", "user": "charlie", "level": "read"},
        {"repository": "acme/public", "user": "charlie", "level": "write"},
        {"repository": "acme/private", "team": "devs", "level": "admin"},
        {"repository": "acme/private", "robot": "ci", "level": "write"},
    ]
    doc["default_grants"] = [{"robot": "ci", "level": "read"}]
    assert _both(people, doc) == [
        ("add", "default_grant", "robot:ci"),
        ("change", "grant", "acme/private team:devs"),
        ("add", "grant", "acme/private user:charlie"),
        ("add", "grant", "acme/public user:charlie"),
    ]
    levels = {
        (g.repository.name, g.user.username if g.user else g.team.name if g.team else "ci"): g.level
        for g in RepositoryGrant.objects.select_related("repository", "user", "team")
    }
    assert levels[("acme/public", "charlie")] == Level.WRITE  # the higher of the two
    assert levels[("acme/private", "charlie")] == Level.READ
    assert levels[("acme/private", "devs")] == Level.ADMIN
    assert DefaultGrant.objects.get(organisation=people.acme).robot == people.robot


def test_it_manages_webhooks_with_secrets_by_reference(
    people: Any, doc: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    monkeypatch.setenv("HOOK_SECRET", "s3cret-one")
    secret_file = tmp_path / "hook"
    secret_file.write_text("from-a-file\n")
    doc["webhooks"] = [
        {"url": "https://93.184.215.14/a", "events": ["push"], "secret": {"env": "HOOK_SECRET"}},
        {
            "url": "https://93.184.215.14/b",
            "repository": "acme/public",
            "enabled": False,
            "secret": {"file": str(secret_file)},
        },
    ]
    assert _both(people, doc) == [
        ("add", "webhook", "https://93.184.215.14/a"),
        ("add", "webhook", "acme/public https://93.184.215.14/b"),
    ]
    a = Webhook.objects.get(url="https://93.184.215.14/a")
    b = Webhook.objects.get(url="https://93.184.215.14/b")
    assert (a.secret, a.on_push, a.on_tag_delete, a.organisation) == (
        "s3cret-one",
        True,
        False,
        people.acme,
    )
    assert (b.secret, b.enabled, b.repository) == ("from-a-file", False, people.public)
    monkeypatch.setenv("HOOK_SECRET", "s3cret-two")
    plan = plan_of(doc, as_user(people.alice))
    assert summary(plan) == [("change", "webhook", "https://93.184.215.14/a")]
    assert "s3cret" not in str(plan.as_dict())  # the plan never shows a secret
    apply_of(doc, as_user(people.alice))
    assert Webhook.objects.get(pk=a.pk).secret == "s3cret-two"


def test_it_prunes_only_when_asked(people: Any, doc: dict[str, Any]) -> None:
    Webhook.objects.create(url="https://old.example.com/", secret="x", organisation=people.acme)
    doc["teams"] = []
    doc["robots"] = []
    doc["grants"] = []
    doc["webhooks"] = []
    doc["members"] = [{"user": "alice", "role": "owner"}]
    alice = as_user(people.alice)
    assert plan_of(doc, alice).changes == []
    assert _both(people, doc, prune=True) == [
        ("remove", "webhook", "https://old.example.com/"),
        ("remove", "grant", "acme/private robot:ci"),
        ("remove", "grant", "acme/private team:devs"),
        ("remove", "robot", "ci"),
        ("remove", "team", "devs"),
        ("remove", "member", "bob"),
    ]
    assert not Team.objects.exists()
    assert not RepositoryGrant.objects.exists()
    assert Robot.objects.get(name="ci").disabled_at is not None
    assert list(Membership.objects.values_list("user__username", flat=True)) == ["alice"]
    # Repositories are never removed by a document.
    assert Repository.objects.filter(name__startswith="acme/").count() == 2


def test_it_keeps_team_members_in_the_organisation_when_pruning(
    people: Any, doc: dict[str, Any]
) -> None:
    doc["members"] = [{"user": "alice", "role": "owner"}]
    assert plan_of(doc, as_user(people.alice), prune=True).changes == []


def test_it_keeps_an_owner_when_pruning(people: Any, doc: dict[str, Any]) -> None:
    from teams.config.document import ConfigError

    doc["members"] = [{"user": "bob", "role": "member"}]
    with pytest.raises(ConfigError, match="keeps at least one owner"):
        apply_of(doc, Applier.command_line("ops"), prune=True)
    assert Membership.objects.get(user=people.alice).role == "owner"


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_it_applies_one_document_at_a_time(people: Any) -> None:
    """Two pipelines applying at once: the second plans after the first committed."""
    import threading

    from django.db import connection, connections

    if connection.vendor != "postgresql":
        pytest.skip("SQLite serialises every write anyway")
    text = "version: 1\norganisation: acme\nteams:\n  - name: ops\n"
    results: list[Any] = []
    start = threading.Barrier(2)

    def run() -> None:
        try:
            start.wait()
            results.append(len(apply_of(text, as_user(people.alice)).changes))
        except Exception as exc:  # noqa: BLE001 - the test reports whatever happened
            results.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert all(isinstance(r, int) for r in results), results
    assert sorted(results) == [0, 1]
    assert Team.objects.filter(name="ops").count() == 1


def test_it_counts_the_default_grants_a_new_repository_gets(
    people: Any, doc: dict[str, Any]
) -> None:
    from teams import actions

    actions.default_grant_add(organisation=people.acme, level=Level.READ, team=people.devs)
    doc = exported(people.acme)
    doc["repositories"].append({"name": "acme/fresh"})
    doc["grants"].append({"repository": "acme/fresh", "user": "charlie", "level": "read"})
    # The default grant (devs: read) comes with the repository; prune takes it away again.
    assert _both(people, doc, prune=True) == [
        ("add", "repository", "acme/fresh"),
        ("add", "grant", "acme/fresh user:charlie"),
        ("remove", "grant", "acme/fresh team:devs"),
    ]
    fresh = RepositoryGrant.objects.filter(repository__name="acme/fresh")
    assert [g.user for g in fresh] == [people.charlie]

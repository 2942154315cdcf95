"""An organisation's current state as a configuration document, sorted so Git diffs stay small.

The same state is what a plan compares a document against, so exporting and then
applying the export changes nothing.
"""

from __future__ import annotations

from typing import Any

import yaml

from accounts.models import Robot
from registry.models import Repository
from registry.policies.actions import describe
from registry.policies.models import Policy, Quota
from registry.webhooks.actions import events_of
from registry.webhooks.models import Webhook
from teams.models import (
    DefaultGrant,
    Level,
    Membership,
    Organisation,
    OrganisationAdminRobot,
    RepositoryGrant,
    Team,
    TeamMember,
)


def subject_of(row: DefaultGrant | RepositoryGrant) -> dict[str, str]:
    if row.user_id is not None:
        return {"user": str(row.user.username)}  # type: ignore[union-attr]
    if row.team_id is not None:
        return {"team": row.team.name}  # type: ignore[union-attr]
    return {"robot": row.robot.name}  # type: ignore[union-attr]


def org_repositories(organisation: Organisation) -> list[Repository]:
    return list(Repository.objects.filter(namespace__organisation=organisation).order_by("name"))


def state(organisation: Organisation) -> dict[str, Any]:
    """Everything a document can say about the organisation, as the document would say it."""
    members = Membership.objects.filter(organisation=organisation).select_related("user")
    repositories = org_repositories(organisation)
    repo_policies = {p.repository_id: p for p in Policy.objects.filter(repository__in=repositories)}
    quota = Quota.objects.filter(namespace__organisation=organisation).first()
    return {
        "version": 1,
        "organisation": organisation.name,
        "display_name": organisation.display_name,
        "description": organisation.description,
        "members": sorted(
            ({"user": str(m.user.username), "role": m.role} for m in members),
            key=lambda m: m["user"],
        ),
        "teams": [_team(team) for team in organisation.teams.order_by("name")],
        "robots": _robots(organisation),
        "repositories": [_repository(r, repo_policies.get(r.pk)) for r in repositories],
        "grants": _grants(repositories),
        "default_grants": _default_grants(organisation),
        "policy": describe(Policy.objects.filter(organisation=organisation).first()),
        "quota_bytes": quota.limit_bytes if quota is not None else None,
        "webhooks": _webhooks(organisation, repositories),
    }


def _team(team: Team) -> dict[str, Any]:
    members = TeamMember.objects.filter(team=team).select_related("user")
    return {
        "name": team.name,
        "description": team.description,
        "may_create_repositories": team.may_create_repositories,
        "members": sorted(
            ({"user": str(m.user.username), "role": m.role} for m in members),
            key=lambda m: m["user"],
        ),
    }


def _robots(organisation: Organisation) -> list[dict[str, Any]]:
    robots = Robot.objects.filter(organisation=organisation, disabled_at__isnull=True)
    admins = set(
        OrganisationAdminRobot.objects.filter(robot__in=robots).values_list("robot_id", flat=True)
    )
    return [
        {
            "name": robot.name,
            "description": robot.description,
            "may_create_repositories": robot.may_create_repositories,
            "organisation_admin": robot.pk in admins,
        }
        for robot in robots.order_by("name")
    ]


def _repository(repository: Repository, policy: Policy | None) -> dict[str, Any]:
    item: dict[str, Any] = {
        "name": repository.name,
        "description": repository.description,
        "visibility": repository.visibility,
    }
    if policy is not None:
        item["policy"] = describe(policy)
    return item


def _sort_key(item: dict[str, Any]) -> tuple[str, ...]:
    kind = next(k for k in ("user", "team", "robot") if k in item)
    return (str(item.get("repository", "")), kind, str(item[kind]))


def _grants(repositories: list[Repository]) -> list[dict[str, Any]]:
    # A disabled robot's grants are inert, and it is in no document: they are left out.
    rows = (
        RepositoryGrant.objects.filter(repository__in=repositories)
        .exclude(robot__disabled_at__isnull=False)
        .select_related("repository", "user", "team", "robot")
    )
    items = [
        {"repository": g.repository.name, **subject_of(g), "level": Level(g.level).label}
        for g in rows
    ]
    return sorted(items, key=_sort_key)


def _default_grants(organisation: Organisation) -> list[dict[str, Any]]:
    # Several default grants of one subject act as the highest of them.
    best: dict[tuple[str, ...], dict[str, Any]] = {}
    rows = organisation.default_grants.exclude(robot__disabled_at__isnull=False)
    for row in rows.select_related("user", "team", "robot"):
        item = {**subject_of(row), "level": Level(row.level).label}
        key = _sort_key(item)
        if key not in best or Level[best[key]["level"].upper()] < row.level:
            best[key] = item
    return [best[key] for key in sorted(best)]


def _webhooks(organisation: Organisation, repositories: list[Repository]) -> list[dict[str, Any]]:
    hooks = Webhook.objects.filter(organisation=organisation) | Webhook.objects.filter(
        repository__in=repositories
    )
    items = []
    for hook in hooks.select_related("repository").order_by("pk"):
        item: dict[str, Any] = {"url": hook.url}
        if hook.repository is not None:
            item["repository"] = hook.repository.name
        items.append({**item, "events": events_of(hook), "enabled": hook.enabled})
    return sorted(items, key=lambda h: (h.get("repository", ""), h["url"]))


def export_text(organisation: Organisation) -> str:
    header = (
        f"# Hub configuration of {organisation.name}; schema: /api/config/schema.json\n"
        "# Webhook secrets are not exported: add `secret: {env: NAME}` to manage them.\n"
    )
    body = yaml.safe_dump(state(organisation), sort_keys=False, allow_unicode=True, width=100)
    return header + body

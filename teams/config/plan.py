"""A document against the organisation: the changes it asks for, checked against the applier's
rights before anything is written."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from accounts.models import Robot
from registry.models import Repository
from registry.webhooks.models import Webhook
from teams.config.changes import Applier, Change, ordered
from teams.config.diff import Diff
from teams.config.document import ConfigError, Document, parse
from teams.config.export import state
from teams.config.references import References
from teams.models import Organisation
from teams.permissions import (
    is_admin_robot,
    may_administer_organisation,
    may_administer_repository,
    may_manage_organisation,
)


@dataclass
class Plan:
    document: Document
    organisation: Organisation
    prune: bool
    changes: list[Change]
    managed: list[str]

    def as_dict(self) -> dict[str, Any]:
        return {
            "organisation": self.organisation.name,
            "sha256": self.document.sha256,
            "prune": self.prune,
            "changes": [c.as_dict() for c in self.changes],
            "summary": {
                op: sum(1 for c in self.changes if c.op == op) for op in ("add", "change", "remove")
            },
        }


def organisation_for(
    document: Document, applier: Applier, expected: str | None = None
) -> Organisation:
    """The document's organisation, if the applier may administer it (one message for both
    missing and forbidden, so names do not leak)."""
    if expected is not None and document.organisation != expected:
        message = f"the document is for {document.organisation}, not {expected}"
        raise ConfigError([document.problem(("organisation",), message)])
    organisation = Organisation.objects.filter(name=document.organisation).first()
    if organisation is None or not (
        applier.operator or may_administer_organisation(applier.actor, organisation)
    ):
        message = (
            f"{applier.name} may not administer an organisation named {document.organisation!r}"
        )
        raise ConfigError([document.problem(("organisation",), message)])
    return organisation


def make_plan(
    text: str | Document,
    *,
    applier: Applier,
    prune: bool = False,
    server_secrets: bool = True,
    organisation: str | None = None,
) -> Plan:
    """Everything the document would change; ConfigError (nothing changed) when it cannot.
    With `organisation`, a document for another one is refused. `text` may be parsed already."""
    document = text if isinstance(text, Document) else parse(text)
    org = organisation_for(document, applier, organisation)
    refs = References(document, server_secrets=server_secrets)
    hooks = Webhook.objects.filter(organisation=org) | Webhook.objects.filter(
        repository__namespace__organisation=org
    )
    secrets = {
        (h.repository.name if h.repository else "", h.url): h.secret
        for h in hooks.select_related("repository")
    }
    diff = Diff(document.data, state(org), refs, prune, secrets)
    diff.organisation()
    diff.members()
    diff.teams()
    disabled = set(
        Robot.objects.filter(organisation=org, disabled_at__isnull=False).values_list(
            "name", flat=True
        )
    )
    diff.robots(disabled)
    names = diff.repositories()
    diff.policy_and_quota()
    teams, robots = (
        _known(document.data, diff.current, "teams", prune),
        _known(document.data, diff.current, "robots", prune),
    )
    diff.default_grants(teams, robots)
    diff.grants(names, teams, robots)
    diff.webhooks(names)
    if refs.problems:
        raise ConfigError(sorted(refs.problems, key=lambda p: (p.line, p.path)))
    changes = ordered(diff.changes)
    _check_rights(document, org, changes, applier)
    return Plan(document, org, prune, changes, _managed(document.data))


def _known(data: dict[str, Any], current: dict[str, Any], section: str, prune: bool) -> set[str]:
    """Team or robot names a grant may name: declared ones, and existing ones that stay."""
    declared = {item["name"] for item in data.get(section, [])}
    if prune and section in data:
        return declared
    return declared | {item["name"] for item in current[section]}


def _check_rights(
    document: Document, organisation: Organisation, changes: list[Change], applier: Applier
) -> None:
    """Every change must be one the applier could make by hand: a document never gives
    more than its applier holds."""
    if applier.operator:
        return
    actor = applier.actor
    owner = may_manage_organisation(actor, organisation)
    admin_robot = is_admin_robot(actor, organisation)
    repositories = {
        r.name: r
        for r in Repository.objects.select_related("namespace").filter(
            name__in={c.repository for c in changes if c.repository}
        )
    }
    problems = []
    for change in changes:
        if change.kind == "quota" and not actor.is_superuser:
            message = "only site administrators set quotas"
            problems.append(document.problem(change.path, message))
        if change.owner_only and not owner:
            message = f"only an owner may make or unmake owners ({change.key})"
            problems.append(document.problem(change.path, message))
        repository = repositories.get(change.repository or "")
        if repository is None or admin_robot:
            continue  # a new repository in the organisation's own namespace
        if not may_administer_repository(actor, repository):
            message = f"{applier.name} may not administer {repository.name}"
            problems.append(document.problem(change.path, message))
    if problems:
        raise ConfigError(problems)


def _managed(data: dict[str, Any]) -> list[str]:
    keys = [f"team:{t['name']}" for t in data.get("teams", [])]
    keys += [f"robot:{r['name']}" for r in data.get("robots", [])]
    keys += [f"repository:{r['name']}" for r in data.get("repositories", [])]
    keys += [f"section:{name}" for name in data if name not in ("version", "organisation")]
    return sorted(set(keys))

"""Applying a plan: every change through the ordinary write functions, in one transaction.

Each write records its audit event as it always does; the document's hash is added to
every one of them, and the revision applied is kept for the organisation's page.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

import audit
from accounts import actions as robots
from accounts.models import Robot
from audit.context import acting_as, current, details_added, set_actor
from registry.models import Repository
from registry.policies import actions as policies
from registry.services.repositories import repository_get_or_create
from registry.webhooks import actions as webhooks
from registry.webhooks.models import Webhook
from teams import actions
from teams.config.changes import Applier, Change
from teams.config.diff import policy_values
from teams.config.document import ConfigError, parse
from teams.config.plan import Plan, make_plan
from teams.models import ConfigRevision, DefaultGrant, Level, Namespace, Organisation, Team


def apply(
    text: str,
    *,
    applier: Applier,
    prune: bool = False,
    server_secrets: bool = True,
    organisation: str | None = None,
) -> Plan:
    """Plan the document, then make exactly its changes, all or none (ConfigError)."""
    with transaction.atomic():
        # One apply at a time per organisation: the plan must still hold when it is made.
        document = parse(text)
        Organisation.objects.select_for_update().filter(name=document.organisation).first()
        plan = make_plan(
            document,
            applier=applier,
            prune=prune,
            server_secrets=server_secrets,
            organisation=organisation,
        )
        if not plan.changes:
            return plan
        with _recorded_as(applier), details_added(config_sha256=plan.document.sha256):
            runner = _Runner(plan.organisation)
            for change in plan.changes:
                try:
                    runner.run(change)
                except (ValidationError, IntegrityError) as exc:
                    # IntegrityError: something changed it by other means meanwhile.
                    why = (
                        "; ".join(exc.messages)
                        if isinstance(exc, ValidationError)
                        else ("it changed while being applied; plan again")
                    )
                    message = f"{change.op} {change.kind} {change.key}: {why}"
                    raise ConfigError([plan.document.problem(change.path, message)]) from None
            _record(plan, applier)
    return plan


@contextmanager
def _recorded_as(applier: Applier) -> Iterator[None]:
    """Every event of the apply names the applier, in a request or not."""
    if current() is None:
        with acting_as(applier.actor, user_agent="hub config"):
            yield
    else:
        set_actor(applier.actor)
        yield


def _record(plan: Plan, applier: Applier) -> None:
    ConfigRevision.objects.create(
        organisation=plan.organisation,
        sha256=plan.document.sha256,
        applied_by_kind=applier.kind,
        applied_by_name=applier.name,
        document=plan.document.text,
        managed=plan.managed,
        changes=len(plan.changes),
        pruned=plan.prune,
    )
    summary = plan.as_dict()["summary"]
    audit.record(
        action="config.apply",
        organisation=plan.organisation.name,
        details={"changes": summary, "prune": plan.prune, "applied_by": applier.kind},
    )


class _Runner:
    """Finds what a change names (created earlier in the same apply, perhaps) and changes it."""

    def __init__(self, organisation: Organisation) -> None:
        self.org = organisation

    def run(self, change: Change) -> None:
        handler: Callable[[Change], None] = getattr(self, f"_{change.kind}")
        handler(change)

    def user(self, name: str) -> Any:
        return get_user_model().objects.get(username=name)

    def team(self, name: str) -> Team:
        return Team.objects.select_related("organisation").get(organisation=self.org, name=name)

    def robot(self, name: str) -> Robot:
        return Robot.objects.select_related("organisation").get(
            organisation=self.org, name=name, disabled_at__isnull=True
        )

    def repository(self, name: str) -> Repository:
        return Repository.objects.select_related("namespace").get(name=name)

    def subject(self, key: str) -> dict[str, Any]:
        kind, _, name = key.partition(":")
        find = {"user": self.user, "team": self.team, "robot": self.robot}[kind]
        return {kind: find(name)}

    def _organisation(self, change: Change) -> None:
        actions.organisation_update(organisation=self.org, **change.after)

    def _member(self, change: Change) -> None:
        user = self.user(change.key)
        if change.op == "remove":
            actions.membership_remove(organisation=self.org, user=user)
        else:
            actions.membership_set(organisation=self.org, user=user, role=change.after["role"])

    def _team(self, change: Change) -> None:
        after = change.after or {}
        fields = {"description": after.get("description")}
        may_create = after.get("may_create_repositories")
        if change.op == "add":
            actions.team_create(
                organisation=self.org,
                name=change.key,
                description=after["description"],
                may_create=after["may_create_repositories"],
            )
        elif change.op == "change":
            actions.team_update(team=self.team(change.key), **fields, may_create=may_create)
        else:
            actions.team_delete(team=self.team(change.key))

    def _team_member(self, change: Change) -> None:
        team_name, _, username = change.key.partition("/")
        team, user = self.team(team_name), self.user(username)
        if change.op == "remove":
            actions.team_member_remove(team=team, user=user)
        else:
            actions.team_member_set(team=team, user=user, role=change.after["role"])

    def _robot(self, change: Change) -> None:
        after = change.after or {}
        if change.op == "add":
            robot = robots.robot_create(
                organisation=self.org,
                name=change.key,
                description=after["description"],
                may_create=after["may_create_repositories"],
            )
        else:
            robot = self.robot(change.key)
        if change.op == "remove":
            robots.robot_disable(robot=robot)
            return
        if change.op == "change" and ({"description", "may_create_repositories"} & set(after)):
            robots.robot_update(
                robot=robot,
                description=after.get("description"),
                may_create=after.get("may_create_repositories"),
            )
        if "organisation_admin" in after:
            actions.robot_admin_set(robot=robot, admin=after["organisation_admin"])

    def _repository(self, change: Change) -> None:
        after = change.after
        if change.op == "add":
            repository = repository_get_or_create(name=change.key)
            # Nothing but a push ever created one before: the default grants and the
            # namespace came with it; its settings come from the document.
            if after == {"description": "", "visibility": "private"}:
                return
        else:
            repository = self.repository(change.key)
        actions.repository_update(
            repository=repository,
            description=after.get("description"),
            visibility=after.get("visibility"),
        )

    def _repository_policy(self, change: Change) -> None:
        values = policy_values(_policy_document(change.after))
        policies.policy_set(repository=self.repository(change.key), values=values)

    def _policy(self, change: Change) -> None:
        values = policy_values(_policy_document(change.after))
        policies.policy_set(organisation=self.org, values=values)

    def _quota(self, change: Change) -> None:
        namespace = Namespace.objects.get(organisation=self.org)
        policies.quota_set(namespace=namespace, limit_bytes=change.after)

    def _default_grant(self, change: Change) -> None:
        subject = self.subject(change.key)
        # One default grant per subject: any others of it go (several acted as the highest).
        for existing in DefaultGrant.objects.filter(organisation=self.org, **subject):
            actions.default_grant_remove(default_grant=existing)
        if change.op != "remove":
            level = Level[change.after["level"].upper()]
            actions.default_grant_add(organisation=self.org, level=level, **subject)

    def _grant(self, change: Change) -> None:
        name, _, key = change.key.partition(" ")
        level = Level.NONE if change.op == "remove" else Level[change.after["level"].upper()]
        actions.grant_set(repository=self.repository(name), level=level, **self.subject(key))

    def _webhook(self, change: Change) -> None:
        repository = self.repository(change.repository) if change.repository else None
        url = change.key.rpartition(" ")[2]
        after = change.after or {}
        if change.op == "add":
            webhooks.webhook_create(
                url=url,
                events=after["events"],
                secret=change.secret,
                repository=repository,
                organisation=None if repository else self.org,
                created_by="configuration",
            )
            if not after["enabled"]:
                webhooks.webhook_update(hook=self._hook(repository, url), enabled=False)
            return
        hook = self._hook(repository, url)
        if change.op == "remove":
            webhooks.webhook_delete(hook=hook)
        else:
            webhooks.webhook_update(
                hook=hook,
                events=after.get("events"),
                enabled=after.get("enabled"),
                secret=change.secret,
            )

    def _hook(self, repository: Repository | None, url: str) -> Webhook:
        hooks = Webhook.objects.select_related("repository", "organisation").filter(url=url)
        scoped = (
            hooks.filter(repository=repository)
            if repository
            else hooks.filter(organisation=self.org)
        )
        return scoped.order_by("pk").first() or scoped.get()


def _policy_document(described: dict[str, Any]) -> dict[str, Any]:
    """describe()'s shape back to the document's (they are the same but for None)."""
    return {
        "immutable_tags": described["immutable_tags"],
        "retention": described["retention"] or {},
    }

"""Tag retention: which tags a policy removes, shown first (dry run), then removed.

A tag goes when any limit of the policy says so (it is not among the newest
`keep_last`, or it was not pushed for `remove_older_than_days`), unless it matches
a keep pattern or an immutable pattern. The manifests it leaves untagged are for the
garbage collector to judge.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Q
from django.utils import timezone

import audit
from registry.models import Repository, Tag
from registry.policies.models import Policy
from registry.policies.rules import immutable_match, immutable_patterns


@dataclass(frozen=True)
class Removal:
    repository: str
    tag: str
    digest: str
    pushed_at: datetime
    reason: str


def effective_policy(repository: Repository) -> Policy | None:
    """The repository's own retention rules, or else its organisation's."""
    own = Policy.objects.filter(repository=repository).first()
    if own is not None and own.has_retention:
        return own
    namespace = repository.namespace
    if namespace is None or namespace.organisation_id is None:
        return None
    org = Policy.objects.filter(organisation_id=namespace.organisation_id).first()
    return org if org is not None and org.has_retention else None


def plan(repository: Repository, policy: Policy, *, now: datetime | None = None) -> list[Removal]:
    now = now or timezone.now()
    immutable = immutable_patterns(repository)
    cutoff = (
        now - timedelta(days=policy.remove_older_than_days)
        if policy.remove_older_than_days is not None
        else None
    )
    rows = (
        Tag.objects.filter(repository=repository)
        .order_by("-updated_at", "name")
        .values_list("name", "updated_at", "manifest__digest")
    )
    removals = []
    for index, (name, updated_at, digest) in enumerate(rows):
        if any(fnmatch.fnmatchcase(name, p) for p in policy.keep_patterns):
            continue
        if immutable_match(name, immutable):
            continue
        if policy.keep_last is not None and index >= policy.keep_last:
            reason = f"not among the newest {policy.keep_last}"
        elif cutoff is not None and updated_at < cutoff:
            reason = f"not pushed for {policy.remove_older_than_days} days"
        else:
            continue
        removals.append(Removal(repository.name, name, digest, updated_at, reason))
    return removals


def repositories_with_retention() -> list[Repository]:
    repo_ids = Policy.objects.filter(repository__isnull=False).filter(
        Q(keep_last__isnull=False) | Q(remove_older_than_days__isnull=False)
    )
    org_ids = Policy.objects.filter(organisation__isnull=False).filter(
        Q(keep_last__isnull=False) | Q(remove_older_than_days__isnull=False)
    )
    return list(
        Repository.objects.filter(
            Q(pk__in=repo_ids.values("repository_id"))
            | Q(namespace__organisation_id__in=org_ids.values("organisation_id"))
        )
        .select_related("namespace")
        .order_by("name")
    )


def run(*, dry_run: bool, only: str | None = None) -> list[Removal]:
    """Apply every switched-on retention policy (all of them, with dry_run, removing nothing)."""
    from registry.services.manifests import manifest_delete

    done: list[Removal] = []
    for repository in repositories_with_retention():
        if only is not None and repository.name != only:
            continue
        policy = effective_policy(repository)
        if policy is None or (not dry_run and not policy.retention_enabled):
            continue
        removed = [
            removal
            for removal in plan(repository, policy)
            if dry_run or manifest_delete(repository=repository, tag=removal.tag, digest=None)
        ]
        if removed and not dry_run:
            audit.record(
                action="retention.apply",
                repository=repository.name,
                details={"removed": [{"tag": r.tag, "reason": r.reason} for r in removed]},
            )
        done += removed
    return done

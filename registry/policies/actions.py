"""Writes on policies and quotas, each with its audit event (before and after)."""

from __future__ import annotations

from typing import Any

from django.db import transaction

import audit
from registry.models import Repository
from registry.policies.models import Policy, Quota
from teams.models import Namespace, Organisation

FIELDS = (
    "immutable_tags",
    "retention_enabled",
    "keep_last",
    "keep_patterns",
    "remove_older_than_days",
)


def describe(policy: Policy | None) -> dict[str, Any]:
    if policy is None:
        return {"immutable_tags": [], "retention": None}
    return {
        "immutable_tags": list(policy.immutable_tags),
        "retention": {
            "enabled": policy.retention_enabled,
            "keep_last": policy.keep_last,
            "keep_patterns": list(policy.keep_patterns),
            "remove_older_than_days": policy.remove_older_than_days,
        }
        if policy.has_retention or policy.retention_enabled or policy.keep_patterns
        else None,
    }


def policy_set(
    *,
    repository: Repository | None = None,
    organisation: Organisation | None = None,
    values: dict[str, Any],
) -> Policy:
    """Replace the policy of a repository or organisation with `values` (FIELDS)."""
    with transaction.atomic():
        policy, _ = Policy.objects.select_for_update().get_or_create(
            repository=repository, organisation=organisation
        )
        before = describe(policy)
        blank = Policy()
        for field in FIELDS:
            setattr(policy, field, values.get(field, getattr(blank, field)))
        policy.save()
        audit.record(
            action="policy.set",
            repository=repository.name if repository is not None else None,
            organisation=organisation.name if organisation is not None else None,
            details={"before": before, "after": describe(policy)},
        )
    return policy


def quota_set(*, namespace: Namespace, limit_bytes: int | None) -> Quota | None:
    with transaction.atomic():
        current = Quota.objects.select_for_update().filter(namespace=namespace).first()
        before = current.limit_bytes if current is not None else None
        if limit_bytes is None:
            if current is not None:
                current.delete()
            quota = None
        else:
            quota, _ = Quota.objects.update_or_create(
                namespace=namespace, defaults={"limit_bytes": limit_bytes}
            )
        audit.record(
            action="quota.set",
            organisation=namespace.name if namespace.organisation_id is not None else None,
            details={"namespace": namespace.name, "before": before, "after": limit_bytes},
        )
    return quota

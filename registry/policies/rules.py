"""The checks on the push path: immutable tags and namespace quotas."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable

from django.db.models import Q, Sum

from registry.errors import RegistryError
from registry.models import Blob, Repository
from registry.policies.models import Policy, Quota


def _policies(repository: Repository) -> list[Policy]:
    scope = Q(repository_id=repository.pk)
    namespace = repository.namespace
    if namespace is not None and namespace.organisation_id is not None:
        scope |= Q(organisation_id=namespace.organisation_id)
    return list(Policy.objects.filter(scope))


def immutable_patterns(repository: Repository) -> list[str]:
    return [p for policy in _policies(repository) for p in policy.immutable_tags]


def immutable_match(tag: str, patterns: Iterable[str]) -> str | None:
    for pattern in patterns:
        if fnmatch.fnmatchcase(tag, pattern):
            return pattern
    return None


def check_tags_may_change(repository: Repository, tags: Iterable[str], verb: str) -> None:
    """DENIED when one of `tags` (already pushed) is immutable here."""
    tags = list(tags)
    if not tags:
        return
    patterns = immutable_patterns(repository)
    if not patterns:
        return
    for tag in tags:
        pattern = immutable_match(tag, patterns)
        if pattern is not None:
            raise RegistryError(
                "DENIED",
                f"tag {tag} of {repository.name} is immutable (pattern {pattern!r}): "
                f"it cannot be {verb}; push a new tag instead",
                detail={"tag": tag, "pattern": pattern},
            )


def namespace_usage(namespace_id: int) -> int:
    """Bytes the namespace's repositories hold, each blob counted once."""
    total = Blob.objects.filter(repository_links__repository__namespace_id=namespace_id).distinct()
    # distinct() + aggregate would sum duplicates on some backends; sum over the ids.
    return int(Blob.objects.filter(pk__in=total.values("pk")).aggregate(s=Sum("size"))["s"] or 0)


def check_room(repository: Repository, *, incoming: int, digest: str | None = None) -> None:
    """DENIED when `incoming` more bytes would take the namespace over its quota.

    A blob the namespace already holds costs nothing more.
    """
    if repository.namespace_id is None:
        return
    quota = Quota.objects.filter(namespace_id=repository.namespace_id).first()
    if quota is None:
        return
    if (
        digest is not None
        and Blob.objects.filter(
            digest=digest, repository_links__repository__namespace_id=repository.namespace_id
        ).exists()
    ):
        return
    used = namespace_usage(repository.namespace_id)
    if used + incoming > quota.limit_bytes:
        raise RegistryError(
            "DENIED",
            f"the namespace {repository.name.split('/', 1)[0]} is over its storage quota: "
            f"{used} of {quota.limit_bytes} bytes used, this needs {incoming} more",
            detail={"used": used, "limit": quota.limit_bytes, "incoming": incoming},
        )

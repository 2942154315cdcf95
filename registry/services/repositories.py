from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from django.db import IntegrityError, transaction
from django.db.models import F
from django.db.models.functions import Coalesce, Greatest

import audit
from accounts.request_auth import materialize
from registry.errors import RegistryError
from registry.models import Repository
from registry.names import check_name
from teams.actions import repository_created
from teams.permissions import ANONYMOUS, Actor


def repository_get(name: str) -> Repository:
    """The repository, or NAME_UNKNOWN; names are checked against the grammar first."""
    check_name(name)
    try:
        return Repository.objects.get(name=name)
    except Repository.DoesNotExist:
        raise RegistryError("NAME_UNKNOWN", detail={"name": name}) from None


def repository_get_or_create(*, name: str, actor: Actor | None = None) -> Repository:
    """The repository, created on first push (the caller has checked the actor may)."""
    check_name(name)
    repo = Repository.objects.filter(name=name).first()
    if repo is not None:
        return repo
    try:
        with transaction.atomic():
            repo = Repository.objects.create(name=name)
            # Namespace, default grants and the creator's grant, in the same transaction.
            audit.record(
                action="repository.create",
                repository=name,
                details={"after": {"visibility": repo.visibility}},
            )
            repository_created(repository=repo, actor=materialize(actor or ANONYMOUS))
            return repo
    except IntegrityError:
        # Another request created it between our read and our insert.
        return Repository.objects.get(name=name)


def pulls_counted(*, counts: Mapping[str, tuple[int, datetime]]) -> None:
    """Add pulls to repositories' counters: {name: (pulls, time of the last)}, one UPDATE
    per repository, in name order (so two workers' batches never deadlock)."""
    for name in sorted(counts):
        n, last = counts[name]
        Repository.objects.filter(name=name).update(
            pull_count=F("pull_count") + n,
            last_pulled_at=Greatest(Coalesce(F("last_pulled_at"), last), last),
        )

from __future__ import annotations

from django.db import IntegrityError, transaction

from registry.errors import RegistryError
from registry.models import Repository
from registry.names import check_name


def repository_get(name: str) -> Repository:
    """The repository, or NAME_UNKNOWN; names are checked against the grammar first."""
    check_name(name)
    try:
        return Repository.objects.get(name=name)
    except Repository.DoesNotExist:
        raise RegistryError("NAME_UNKNOWN", detail={"name": name}) from None


def repository_get_or_create(*, name: str) -> Repository:
    check_name(name)
    repo = Repository.objects.filter(name=name).first()
    if repo is not None:
        return repo
    try:
        with transaction.atomic():
            return Repository.objects.create(name=name)
    except IntegrityError:
        # Another request created it between our read and our insert.
        return Repository.objects.get(name=name)

"""What the organisation's page shows of its configuration: the last revision applied."""

from __future__ import annotations

from dataclasses import dataclass

from teams.models import ConfigRevision, Organisation


@dataclass(frozen=True)
class ConfigStatus:
    revision: ConfigRevision
    managed: frozenset[str]  # "team:devs", "robot:ci", "repository:acme/app", ...


def config_status(organisation: Organisation) -> ConfigStatus | None:
    revision = (
        ConfigRevision.objects.filter(organisation=organisation)
        .defer("document")
        .order_by("-applied_at", "-pk")
        .first()
    )
    if revision is None:
        return None
    return ConfigStatus(revision=revision, managed=frozenset(revision.managed))

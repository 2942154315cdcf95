from collections.abc import Mapping
from datetime import datetime

from django.apps import AppConfig


class RegistryConfig(AppConfig):
    name = "registry"
    verbose_name = "Registry"

    def ready(self) -> None:
        from audit.pulls import count_pulls_with

        # The registry keeps the pull counts; the audit trail's batches of pulls feed them
        # (one UPDATE per repository per batch, in the transaction that records them).
        count_pulls_with(_count_pulls)


def _count_pulls(counts: Mapping[str, tuple[int, datetime]]) -> None:
    from registry.services.repositories import pulls_counted

    pulls_counted(counts=counts)

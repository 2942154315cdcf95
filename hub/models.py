"""Hub's own rows: when each periodic job last started (for the embedded scheduler)."""

from __future__ import annotations

from django.db import models


class PeriodicJob(models.Model):
    """One row per periodic task; whoever moves `last_started_at` on runs that period."""

    name = models.CharField(max_length=200, primary_key=True)
    last_started_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.name

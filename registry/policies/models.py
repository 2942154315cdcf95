"""What a repository's or an organisation's policy says, and namespace quotas."""

from __future__ import annotations

from django.db import models


class Policy(models.Model):
    """Immutable-tag patterns and tag retention, for one repository or one organisation.

    A repository's immutable patterns add to its organisation's; its retention rules,
    when it has any, replace the organisation's.
    """

    repository = models.OneToOneField(
        "registry.Repository",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="policy",
    )
    organisation = models.OneToOneField(
        "teams.Organisation", null=True, blank=True, on_delete=models.CASCADE, related_name="policy"
    )
    # Glob patterns (fnmatch: *, ?, [..]); a matching tag, once pushed, never moves or goes.
    immutable_tags = models.JSONField(default=list, blank=True)
    retention_enabled = models.BooleanField(default=False)
    # Keep the N tags pushed (or moved) most recently; None: no such limit.
    keep_last = models.PositiveIntegerField(null=True, blank=True)
    # Tags matching these are always kept.
    keep_patterns = models.JSONField(default=list, blank=True)
    # Remove tags not pushed for this many days; None: no age limit.
    remove_older_than_days = models.PositiveIntegerField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "policies"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(repository__isnull=False, organisation__isnull=True)
                | models.Q(repository__isnull=True, organisation__isnull=False),
                name="policy_one_scope",
            )
        ]

    def __str__(self) -> str:
        return f"policy {self.pk}"

    @property
    def has_retention(self) -> bool:
        return self.keep_last is not None or self.remove_older_than_days is not None


class Quota(models.Model):
    """Storage one namespace may use: each blob counted once, however many of its
    repositories link it."""

    namespace = models.OneToOneField(
        "teams.Namespace", on_delete=models.CASCADE, related_name="quota"
    )
    limit_bytes = models.BigIntegerField()
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.namespace_id}: {self.limit_bytes}"

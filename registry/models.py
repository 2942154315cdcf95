"""The registry's data: repositories, content-addressed blobs and manifests, tags, uploads.

Blob bytes live in the store (registry.storage), once per digest; everything a
request needs to decide and answer lives here, so that any worker of any app
process can serve any request.
"""

from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone


class Repository(models.Model):
    class Visibility(models.TextChoices):
        PRIVATE = "private"
        PUBLIC = "public"

    name = models.CharField(max_length=255, unique=True)
    namespace = models.ForeignKey(
        "teams.Namespace",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="repositories",
    )
    visibility = models.CharField(
        max_length=8, choices=Visibility.choices, default=Visibility.PRIVATE
    )
    description = models.TextField(blank=True)
    # Garbage collection removes untagged manifests pushed more than this many hours ago
    # (none that a tagged manifest still needs); None keeps them all.
    untagged_manifest_hours = models.PositiveIntegerField(null=True, blank=True, default=None)
    created_at = models.DateTimeField(auto_now_add=True)
    # Successful manifest GETs, counted whether or not pulls are audited, added in batches
    # (registry.services.repositories.pulls_counted, fed by audit.pulls' flush).
    pull_count = models.BigIntegerField(default=0)
    last_pulled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "repositories"

    def __str__(self) -> str:
        return self.name


class Blob(models.Model):
    """A blob in the store. A row exists only once its bytes are complete and verified."""

    digest = models.CharField(max_length=200, unique=True)
    size = models.BigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)
    # Moved forward whenever the blob is uploaded, mounted or pulled (at most every half
    # grace period): garbage collection spares blobs touched within the grace period.
    last_referenced_at = models.DateTimeField(default=timezone.now, db_index=True)

    def __str__(self) -> str:
        return self.digest


class RepositoryBlob(models.Model):
    """A blob is readable through a repository only when it was pushed or mounted there."""

    repository = models.ForeignKey(Repository, on_delete=models.CASCADE, related_name="blob_links")
    blob = models.ForeignKey(Blob, on_delete=models.PROTECT, related_name="repository_links")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["repository", "blob"], name="repository_blob_unique")
        ]

    def __str__(self) -> str:
        return f"{self.repository_id}:{self.blob_id}"


class Manifest(models.Model):
    repository = models.ForeignKey(Repository, on_delete=models.CASCADE, related_name="manifests")
    digest = models.CharField(max_length=200)
    media_type = models.CharField(max_length=255)
    artifact_type = models.CharField(max_length=255, blank=True, default="")
    # The digest of the manifest this one refers to (OCI 1.1 `subject`), for referrers.
    subject_digest = models.CharField(max_length=200, blank=True, default="", db_index=True)
    annotations = models.JSONField(default=dict, blank=True)
    size = models.IntegerField()
    # Manifests are small (4 MiB at most) and read far more often than written:
    # the bytes stay in the database, so a GET is one indexed query.
    content = models.BinaryField()
    created_at = models.DateTimeField(auto_now_add=True)
    blobs = models.ManyToManyField(Blob, related_name="manifests", blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["repository", "digest"], name="manifest_unique")
        ]
        indexes = [models.Index(fields=["repository", "subject_digest"])]

    def __str__(self) -> str:
        return f"{self.repository_id}@{self.digest}"


class ManifestChild(models.Model):
    """An index (or manifest list) names other manifests of the same repository."""

    parent = models.ForeignKey(Manifest, on_delete=models.CASCADE, related_name="child_links")
    child = models.ForeignKey(Manifest, on_delete=models.PROTECT, related_name="parent_links")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["parent", "child"], name="manifest_child_unique")
        ]

    def __str__(self) -> str:
        return f"{self.parent_id}->{self.child_id}"


class Tag(models.Model):
    repository = models.ForeignKey(Repository, on_delete=models.CASCADE, related_name="tags")
    name = models.CharField(max_length=128)
    manifest = models.ForeignKey(Manifest, on_delete=models.CASCADE, related_name="tags")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["repository", "name"], name="tag_unique")]

    def __str__(self) -> str:
        return self.name


class Upload(models.Model):
    """A blob upload session; its running hash and store state survive between requests."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    repository = models.ForeignKey(Repository, on_delete=models.CASCADE, related_name="uploads")
    # Who opened the session (teams.permissions.Actor.key); only they may continue it.
    owner = models.CharField(max_length=64, blank=True, default="")
    size = models.BigIntegerField(default=0)
    hash_algorithm = models.CharField(max_length=16, default="sha256")
    # Serialized running hash (registry.digests) over bytes [0, size).
    hash_state = models.BinaryField(null=True, blank=True)
    # Whatever the storage backend needs to go on (a path, an S3 multipart id and parts).
    storage_state = models.JSONField(default=dict, blank=True)
    # A request streaming into the session holds it until `lease_until`, so two
    # requests (on any worker or node) never write the same session at once.
    lease_token = models.CharField(max_length=32, blank=True, default="")
    lease_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return str(self.id)


class GcRun(models.Model):
    """One garbage collection: what it removed (or, in a dry run, would have)."""

    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    dry_run = models.BooleanField(default=False)
    grace_seconds = models.IntegerField()
    manifests_removed = models.IntegerField(default=0)
    blobs_removed = models.IntegerField(default=0)
    bytes_freed = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"gc {self.started_at:%Y-%m-%d %H:%M:%S}"


# Webhook and policy models live beside their code; importing them here registers them with the app.
from registry.policies.models import Policy, Quota  # noqa: E402
from registry.webhooks.models import Webhook, WebhookAttempt, WebhookDelivery  # noqa: E402

__all__ = [
    "Blob",
    "GcRun",
    "Manifest",
    "ManifestChild",
    "Policy",
    "Quota",
    "Repository",
    "RepositoryBlob",
    "Tag",
    "Upload",
    "Webhook",
    "WebhookAttempt",
    "WebhookDelivery",
]

"""Webhooks: who is told what, and every attempt to tell them."""

from __future__ import annotations

import uuid

from django.db import models


class Webhook(models.Model):
    """A URL told about pushes, tag deletions and (optionally) pulls in one repository or in
    every repository of one organisation."""

    repository = models.ForeignKey(
        "registry.Repository", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    organisation = models.ForeignKey(
        "teams.Organisation", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    url = models.URLField(max_length=2000)
    # Kept as given: the server needs it to sign every delivery (HMAC-SHA256).
    secret = models.CharField(max_length=200)
    on_push = models.BooleanField(default=True)
    on_tag_delete = models.BooleanField(default=True)
    on_pull = models.BooleanField(default=False)
    enabled = models.BooleanField(default=True)
    disabled_reason = models.TextField(blank=True)
    failing_since = models.DateTimeField(null=True, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    created_by = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(repository__isnull=False, organisation__isnull=True)
                | models.Q(repository__isnull=True, organisation__isnull=False),
                name="webhook_one_scope",
            )
        ]

    def __str__(self) -> str:
        return self.url


class WebhookDelivery(models.Model):
    """One event for one hook; attempted until it is delivered or gives up."""

    class State(models.TextChoices):
        PENDING = "pending"
        DELIVERED = "delivered"
        FAILED = "failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="deliveries")
    event = models.CharField(max_length=32)
    payload = models.TextField()
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    # When a worker may (next) try it; a worker that claims it moves this forward by a
    # lease, so two workers never send the same attempt.
    next_attempt_at = models.DateTimeField(db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["state", "next_attempt_at"], name="webhook_due")]
        verbose_name_plural = "webhook deliveries"

    def __str__(self) -> str:
        return f"{self.event} {self.id}"


class WebhookAttempt(models.Model):
    delivery = models.ForeignKey(
        WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log"
    )
    number = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField()
    status_code = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)

    def __str__(self) -> str:
        return f"attempt {self.number} of {self.delivery_id}"

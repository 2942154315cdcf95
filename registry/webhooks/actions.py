"""Writes on webhooks, each with its audit event in the same transaction."""

from __future__ import annotations

import secrets

from django.db import transaction

import audit
from registry.models import Repository
from registry.webhooks.dispatch import forget_pull_hooks
from registry.webhooks.models import Webhook
from teams.models import Organisation

FLAGS = {"push": "on_push", "tag_delete": "on_tag_delete", "pull": "on_pull"}


def events_of(hook: Webhook) -> list[str]:
    return [event for event, flag in FLAGS.items() if getattr(hook, flag)]


def _scope(hook: Webhook) -> dict[str, str | None]:
    return {
        "repository": hook.repository.name if hook.repository is not None else None,
        "organisation": hook.organisation.name if hook.organisation is not None else None,
    }


def webhook_create(
    *,
    url: str,
    events: list[str],
    secret: str | None = None,
    repository: Repository | None = None,
    organisation: Organisation | None = None,
    created_by: str = "",
) -> Webhook:
    """A new hook; without a secret one is made (the caller shows it once)."""
    hook = Webhook(
        url=url,
        secret=secret or secrets.token_urlsafe(32),
        repository=repository,
        organisation=organisation,
        created_by=created_by[:200],
        **{flag: event in events for event, flag in FLAGS.items()},
    )
    with transaction.atomic():
        hook.save()
        audit.record(
            action="webhook.create",
            **_scope(hook),
            details={"webhook": hook.pk, "url": url, "events": events_of(hook)},
        )
    forget_pull_hooks()
    return hook


def webhook_update(
    *,
    hook: Webhook,
    url: str | None = None,
    events: list[str] | None = None,
    secret: str | None = None,
    enabled: bool | None = None,
) -> Webhook:
    before = {"url": hook.url, "events": events_of(hook), "enabled": hook.enabled}
    if url is not None:
        hook.url = url
    if events is not None:
        for event, flag in FLAGS.items():
            setattr(hook, flag, event in events)
    if secret is not None:
        hook.secret = secret
    if enabled is not None and enabled != hook.enabled:
        hook.enabled = enabled
        if enabled:
            # Switched back on: it starts with a clean record.
            hook.disabled_reason = ""
            hook.failing_since = None
    after = {"url": hook.url, "events": events_of(hook), "enabled": hook.enabled}
    with transaction.atomic():
        hook.save()
        audit.record(
            action="webhook.update",
            **_scope(hook),
            details={
                "webhook": hook.pk,
                "before": before,
                "after": after,
                "secret_changed": secret is not None,
            },
        )
    forget_pull_hooks()
    return hook


def webhook_delete(*, hook: Webhook) -> None:
    with transaction.atomic():
        audit.record(
            action="webhook.delete",
            **_scope(hook),
            details={"webhook": hook.pk, "url": hook.url, "events": events_of(hook)},
        )
        hook.delete()
    forget_pull_hooks()

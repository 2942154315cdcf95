"""Queueing events for webhooks, in the transaction of the change they tell about.

A delivery row is written with the change (so a push is never committed without its
notification, nor notified without being committed); a worker sends it after the
commit. Pulls are on the hot path: which repositories and organisations have pull hooks
is remembered per process for a few seconds, so a pull without one costs no query.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from audit.recording import chain_for
from registry.webhooks.models import Webhook, WebhookDelivery

EVENTS = ("push", "tag_delete", "pull")
_FLAG = {"push": "on_push", "tag_delete": "on_tag_delete", "pull": "on_pull"}

_PULL_HOOKS_TTL = 5.0
_pull_hooks: tuple[float, frozenset[str], frozenset[str]] = (0.0, frozenset(), frozenset())
_pull_lock = threading.Lock()


def _with_pull_hooks() -> tuple[frozenset[str], frozenset[str]]:
    """(repository names, organisation namespaces) that have an enabled pull hook."""
    global _pull_hooks
    expires, repos, orgs = _pull_hooks
    if expires > time.monotonic():
        return repos, orgs
    with _pull_lock:
        hooks = Webhook.objects.filter(enabled=True, on_pull=True)
        repos = frozenset(
            hooks.filter(repository__isnull=False).values_list("repository__name", flat=True)
        )
        orgs = frozenset(
            hooks.filter(organisation__isnull=False).values_list(
                "organisation__namespace__name", flat=True
            )
        )
        _pull_hooks = (time.monotonic() + _PULL_HOOKS_TTL, repos, orgs)
    return repos, orgs


def forget_pull_hooks() -> None:
    global _pull_hooks
    _pull_hooks = (0.0, frozenset(), frozenset())


def notify(
    *,
    event: str,
    repository: str,
    tag: str | None = None,
    digest: str | None = None,
    media_type: str | None = None,
    extra: dict[str, Any] | None = None,
) -> int:
    """Queue `event` for every enabled hook on the repository or its organisation."""
    if event == "pull":
        repos, namespaces = _with_pull_hooks()
        if repository not in repos and repository.partition("/")[0] not in namespaces:
            return 0
    hooks = list(
        Webhook.objects.filter(enabled=True, **{_FLAG[event]: True})
        .filter(
            Q(repository__name=repository)
            | Q(organisation__namespace__name=repository.partition("/")[0])
        )
        .distinct()
    )
    if not hooks:
        return 0
    # The audit trail already knows (and briefly remembers) whose a namespace is.
    organisation = chain_for(None, repository)[1]
    now = timezone.now()
    body = {
        "event": event,
        "occurred_at": now.isoformat(),
        "repository": repository,
        "organisation": organisation or None,
        "tag": tag,
        "digest": digest,
        "media_type": media_type,
        "actor": _actor(),
        **(extra or {}),
    }
    deliveries = []
    for hook in hooks:
        delivery = WebhookDelivery(webhook=hook, event=event, next_attempt_at=now)
        delivery.payload = json.dumps({"id": str(delivery.id), **body}, sort_keys=True)
        deliveries.append(delivery)
    WebhookDelivery.objects.bulk_create(deliveries)
    ids = [str(d.id) for d in deliveries]
    transaction.on_commit(lambda: _send_soon(ids))
    return len(deliveries)


def _actor() -> dict[str, str]:
    from audit.context import actor_from_django_request, current
    from audit.recording import actor_fields

    ctx = current()
    actor = None
    if ctx is not None:
        actor = ctx.actor or actor_from_django_request(ctx.request)
    fields = actor_fields(actor, ctx)
    return {"name": fields["actor_name"], "kind": fields["actor_kind"]}


def queue_available() -> bool:
    """Whether a Celery broker takes tasks (else the periodic sweep sends deliveries)."""
    return not settings.CELERY_TASK_ALWAYS_EAGER


def _send_soon(ids: list[str]) -> None:
    if not queue_available():
        # Eager tasks would run here, in the request: the periodic sweep sends them instead.
        return
    from registry.tasks import deliver_webhook

    for delivery_id in ids:
        deliver_webhook.delay(delivery_id)


def backoff(attempts: int) -> timedelta:
    """How long to wait after the n-th failed attempt: doubling, capped at an hour."""
    base = settings.HUB_WEBHOOK_RETRY_BASE
    return timedelta(seconds=min(base * 2 ** max(attempts - 1, 0), 3600))

"""Sending a delivery: one signed POST per attempt, every attempt recorded.

A failed attempt is tried again later (doubling waits); a hook that has failed
without a single success for HUB_WEBHOOK_DISABLE_AFTER seconds is switched off, and
its owners see why (the hook's disabled_reason, and an audit event).
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import logging
import socket
import ssl
import time
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

import audit
from hub import metrics
from registry.webhooks.dispatch import backoff
from registry.webhooks.models import Webhook, WebhookAttempt, WebhookDelivery
from registry.webhooks.safety import Target, UnsafeTarget, resolve

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Hub-Signature-256"
USER_AGENT = "Hub-Webhooks/1"


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to the address that was checked, not to whatever the name says now."""

    def __init__(self, target: Target, timeout: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout)
        self._address = target.address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, target: Target, timeout: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout)
        self._address = target.address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = ssl.create_default_context().wrap_socket(sock, server_hostname=self.host)


def _post(url: str, body: bytes, headers: dict[str, str]) -> int:
    target = resolve(url)
    timeout = float(settings.HUB_WEBHOOK_TIMEOUT)
    conn: http.client.HTTPConnection
    if target.scheme == "https":
        conn = _PinnedHTTPSConnection(target, timeout)
    else:
        conn = _PinnedHTTPConnection(target, timeout)
    try:
        conn.request("POST", target.path, body=body, headers=headers)
        response = conn.getresponse()
        response.read(64 * 1024)  # a little of the answer, so the connection ends cleanly
        return response.status
    finally:
        conn.close()


def claim(delivery_id: str) -> WebhookDelivery | None:
    """Take a due delivery for this worker (a lease, so no other worker sends it too)."""
    now = timezone.now()
    lease = now + timedelta(seconds=float(settings.HUB_WEBHOOK_TIMEOUT) * 3 + 30)
    taken = WebhookDelivery.objects.filter(
        pk=delivery_id, state=WebhookDelivery.State.PENDING, next_attempt_at__lte=now
    ).update(next_attempt_at=lease)
    if not taken:
        return None
    return WebhookDelivery.objects.select_related("webhook").filter(pk=delivery_id).first()


def attempt(delivery: WebhookDelivery) -> WebhookAttempt:
    """Send one attempt of a claimed delivery and record how it went."""
    hook = delivery.webhook
    body = delivery.payload.encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Hub-Event": delivery.event,
        "X-Hub-Delivery": str(delivery.id),
        SIGNATURE_HEADER: signature(hook.secret, body),
    }
    started = timezone.now()
    clock = time.monotonic()
    status: int | None = None
    error = ""
    if not hook.enabled:
        error = "the hook is switched off"
    else:
        try:
            status = _post(hook.url, body, headers)
            if not 200 <= status < 300:
                error = f"the receiver answered {status}"
        except UnsafeTarget as exc:
            error = f"refused: {exc}"
        except (OSError, http.client.HTTPException) as exc:
            error = f"{type(exc).__name__}: {exc}"[:1000]
    elapsed = time.monotonic() - clock
    metrics.WEBHOOK_DURATION.observe(elapsed)
    record = WebhookAttempt(
        delivery=delivery,
        number=delivery.attempts + 1,
        started_at=started,
        duration_ms=int(elapsed * 1000),
        status_code=status,
        error=error,
    )
    _settle(delivery, hook, record)
    return record


def _settle(delivery: WebhookDelivery, hook: Webhook, record: WebhookAttempt) -> None:
    now = timezone.now()
    with transaction.atomic():
        record.save()
        delivery.attempts = record.number
        if not record.error:
            metrics.WEBHOOK_DELIVERIES.labels(outcome="success").inc()
            delivery.state = WebhookDelivery.State.DELIVERED
            Webhook.objects.filter(pk=hook.pk).update(failing_since=None, last_success_at=now)
        else:
            if not hook.enabled or record.number >= settings.HUB_WEBHOOK_MAX_ATTEMPTS:
                metrics.WEBHOOK_DELIVERIES.labels(outcome="gave_up").inc()
                delivery.state = WebhookDelivery.State.FAILED
            else:
                metrics.WEBHOOK_DELIVERIES.labels(outcome="failure").inc()
                delivery.next_attempt_at = now + backoff(record.number)
            if hook.enabled:
                _note_failure(hook, record, now)
        delivery.save(update_fields=["attempts", "state", "next_attempt_at"])


def _note_failure(hook: Webhook, record: WebhookAttempt, now) -> None:  # type: ignore[no-untyped-def]
    Webhook.objects.filter(pk=hook.pk, failing_since__isnull=True).update(failing_since=now)
    hook.refresh_from_db(fields=["failing_since", "enabled"])
    since = hook.failing_since or now
    if now - since < timedelta(seconds=settings.HUB_WEBHOOK_DISABLE_AFTER):
        return
    reason = (
        f"switched off at {now:%Y-%m-%d %H:%M} UTC: every delivery has failed since "
        f"{since:%Y-%m-%d %H:%M} UTC (last: {record.error})"
    )[:2000]
    switched = Webhook.objects.filter(pk=hook.pk, enabled=True).update(
        enabled=False, disabled_reason=reason
    )
    if switched:
        audit.record(
            action="webhook.disable",
            outcome="failure",
            repository=hook.repository.name if hook.repository is not None else None,
            organisation=hook.organisation.name if hook.organisation is not None else None,
            details={"webhook": hook.pk, "url": hook.url, "reason": reason},
        )


def deliver(delivery_id: str) -> WebhookAttempt | None:
    delivery = claim(delivery_id)
    if delivery is None:
        return None
    return attempt(delivery)


def deliver_due(*, limit: int = 100) -> int:
    """Send every delivery that is due (the sweep: retries, and all of them without a
    broker). Returns how many attempts were made."""
    due = list(
        WebhookDelivery.objects.filter(
            state=WebhookDelivery.State.PENDING, next_attempt_at__lte=timezone.now()
        )
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )
    made = 0
    for delivery_id in due:
        if deliver(str(delivery_id)) is not None:
            made += 1
    return made

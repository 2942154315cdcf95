"""Celery tasks for webhooks (shared_task: they bind to Hub's Celery app)."""

from __future__ import annotations

from celery import shared_task

from registry.webhooks import delivery
from registry.webhooks.dispatch import backoff, queue_available


@shared_task(name="hub.webhooks.deliver", ignore_result=True)
def deliver(delivery_id: str) -> None:
    record = delivery.deliver(delivery_id)
    if record is not None and record.error and queue_available():
        # The next try is due after the backoff; send it then (the sweep is the net).
        deliver.apply_async((delivery_id,), countdown=backoff(record.number).total_seconds())


@shared_task(name="hub.webhooks.deliver_due", ignore_result=True)
def deliver_due() -> int:
    return delivery.deliver_due()

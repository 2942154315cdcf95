"""The registry's background tasks (hub.celery). Each is idempotent and safe to retry."""

from __future__ import annotations

from typing import Any

from hub.celery import app
from registry.storage import StorageError


@app.task(name="registry.collect_garbage")
def collect_garbage(grace_seconds: int | None = None) -> dict[str, Any]:
    """One garbage collection (skipped, and said so, while another one runs)."""
    from registry.services.gc import collect

    return collect(grace_seconds=grace_seconds).summary()


@app.task(name="registry.expire_uploads")
def expire_uploads() -> int:
    """Remove abandoned upload sessions and their data, a thousand at a time."""
    from registry.services.uploads import uploads_expire

    total = 0
    while removed := uploads_expire():
        total += removed
    return total


@app.task(
    name="registry.remove_upload_data",
    autoretry_for=(StorageError,),
    retry_backoff=True,
    max_retries=5,
)
def remove_upload_data(upload_id: str, storage_state: dict[str, Any]) -> None:
    """Remove what a finished or cancelled session left in the store (its row is gone)."""
    from registry.storage import get_storage

    get_storage().upload_abort(upload_id, storage_state)


@app.task(name="registry.deliver_webhook")
def deliver_webhook(delivery_id: str) -> None:
    """One attempt of one webhook delivery; a failed one is sent again after its backoff
    (and the periodic sweep catches any that a lost message left behind)."""
    from registry.webhooks import delivery
    from registry.webhooks.dispatch import backoff

    record = delivery.deliver(delivery_id)
    if record is not None and record.error:
        countdown = backoff(record.number).total_seconds()
        deliver_webhook.apply_async((delivery_id,), countdown=countdown)


@app.task(name="registry.deliver_due_webhooks")
def deliver_due_webhooks() -> int:
    """Every webhook delivery that is due: retries, and all of them without a broker."""
    from registry.webhooks.delivery import deliver_due

    total = 0
    while made := deliver_due():
        total += made
        if made < 100:
            break
    return total


@app.task(name="registry.apply_retention")
def apply_retention() -> int:
    """The switched-on tag retention policies."""
    from registry.policies.retention import run

    return len(run(dry_run=False))

"""Exports too big for one request: written to the blob store in the background.

An export whose matching events number more than HUB_AUDIT_EXPORT_SYNC_LIMIT (or one
asked for as a job) becomes an ExportJob. The task (audit.tasks.run_export) writes the
file with the requester's visibility as it is then, records its row count, size and
sha256, and keeps it HUB_AUDIT_EXPORT_KEEP seconds. Its download link is signed and
valid HUB_AUDIT_EXPORT_LINK_TTL seconds; only the requester (or a site administrator)
may use it. expire_jobs() (a periodic job) removes the files of expired jobs.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import secrets
import sys
import threading
from collections.abc import Iterable, Iterator, Mapping
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core import signing
from django.db import close_old_connections, transaction
from django.db.models import QuerySet
from django.utils import timezone

from audit import exporting
from audit.models import Event, ExportJob
from audit.queries import FILTERS, apply_filters, visible_events, whole_chains
from audit.recording import record
from hub.tasks import send_on_commit
from registry.storage import Storage, StorageError, get_storage
from teams.permissions import Actor

log = logging.getLogger(__name__)

PREFIX = "audit-export"
_SALT = "audit.export.download"
EXTENSIONS = {"csv": "csv", "jsonl": "jsonl", "ocsf": "jsonl"}


def matching(actor: Actor, filters: Mapping[str, Any]) -> QuerySet[Event]:
    """The events an export with these filters holds for this actor (BadFilter if bad)."""
    return apply_filters(visible_events(actor), filters)


def over_limit(events: QuerySet[Event]) -> bool:
    """Whether more than HUB_AUDIT_EXPORT_SYNC_LIMIT sealed events match (0: no limit):
    counts no further than the limit, so a huge table costs no more than a small export."""
    limit = settings.HUB_AUDIT_EXPORT_SYNC_LIMIT
    if limit <= 0:
        return False
    sealed = events.filter(seal__isnull=False).order_by()
    return sealed.values("id")[: limit + 1].count() > limit


def clean_filters(params: Mapping[str, Any]) -> dict[str, str]:
    return {name: str(params[name]).strip() for name in FILTERS if params.get(name)}


def visible_jobs(actor: Actor) -> QuerySet[ExportJob]:
    """The jobs an actor may see: their own; all of them for a site administrator."""
    if actor.user is None or actor.granted is not None or actor.token is not None:
        return ExportJob.objects.none()
    if actor.is_superuser:
        return ExportJob.objects.all()
    return ExportJob.objects.filter(requester=actor.user)


def export_job_start(*, actor: Actor, fmt: str, filters: Mapping[str, Any]) -> ExportJob:
    """Queue an export for the actor (a person), recording that it was asked for."""
    clean = clean_filters(filters)
    matching(actor, clean)  # a bad filter is refused now, not in the background
    with transaction.atomic():
        job = ExportJob.objects.create(
            requester=actor.user, format=fmt, filters=clean, created_at=timezone.now()
        )
        record(
            action="audit.export_start",
            actor=actor,
            details={"job": job.id, "format": fmt, "filters": clean},
        )
        _send(job.id)
    return job


def _send(job_id: int) -> None:
    from audit.tasks import run_export

    if settings.CELERY_TASK_ALWAYS_EAGER and "gunicorn.workers.base" in sys.modules:
        # No broker: an eager task would hold the request for the whole export.
        transaction.on_commit(lambda: _in_thread(job_id), robust=True)
    else:
        send_on_commit(run_export, job_id)


def _in_thread(job_id: int) -> None:
    def run() -> None:
        try:
            run_job(job_id)
        finally:
            close_old_connections()

    threading.Thread(target=run, name=f"audit-export-{job_id}", daemon=True).start()


class _Digest:
    """Encodes the export's text, hashing and counting the bytes on their way out."""

    def __init__(self) -> None:
        self.sha256 = hashlib.sha256()

    def bytes(self, lines: Iterable[str]) -> Iterator[bytes]:
        for text in lines:
            data = text.encode()
            self.sha256.update(data)
            yield data


def run_job(job_id: int, storage: Storage | None = None) -> ExportJob | None:
    """Write the job's export to the store (the task's body); None if it is not queued."""
    claimed = ExportJob.objects.filter(id=job_id, status=ExportJob.Status.QUEUED).update(
        status=ExportJob.Status.RUNNING, started_at=timezone.now()
    )
    if not claimed:
        return None  # run already (a task delivered twice), or gone
    job = ExportJob.objects.select_related("requester").get(id=job_id)
    storage = storage or get_storage()
    name = f"{PREFIX}/{job.id:012d}-{secrets.token_hex(8)}.{EXTENSIONS[job.format]}"
    try:
        # What the requester may read now: they may have lost an organisation since.
        actor = Actor(user=job.requester, method="session")
        events = matching(actor, job.filters) if job.requester.is_active else Event.objects.none()
        export = exporting.stream(job.format, events, whole_chains(job.filters))
        digest = _Digest()
        size = storage.object_write(
            name, digest.bytes(exporting.one_snapshot(iter(export), events.db))
        )
    except Exception as exc:
        log.exception("audit export %s failed", job.id)
        with contextlib.suppress(StorageError):
            storage.object_delete(name)
        job.status, job.error = ExportJob.Status.FAILED, str(exc)[:2000]
        job.finished_at = timezone.now()
        job.save(update_fields=["status", "error", "finished_at"])
        return job
    now = timezone.now()
    job.status, job.storage_key, job.size = ExportJob.Status.DONE, name, size
    job.row_count, job.sha256 = export.count, digest.sha256.hexdigest()
    job.finished_at = now
    job.expires_at = now + timedelta(seconds=settings.HUB_AUDIT_EXPORT_KEEP)
    job.save()
    return job


def download_token(job: ExportJob) -> str:
    return signing.dumps({"job": job.id, "user": job.requester_id}, salt=_SALT)


def link_ttl(job: ExportJob) -> int:
    """Seconds a link made now stays valid: the setting, and never past the file."""
    ttl = settings.HUB_AUDIT_EXPORT_LINK_TTL
    if job.expires_at is not None:
        ttl = min(ttl, int((job.expires_at - timezone.now()).total_seconds()))
    return max(ttl, 0)


def token_valid(job: ExportJob, token: str) -> bool:
    try:
        claims = signing.loads(token, salt=_SALT, max_age=settings.HUB_AUDIT_EXPORT_LINK_TTL)
    except signing.BadSignature:  # SignatureExpired too
        return False
    return bool(claims == {"job": job.id, "user": job.requester_id})


def downloadable(job: ExportJob) -> bool:
    return (
        job.status == ExportJob.Status.DONE
        and job.expires_at is not None
        and job.expires_at > timezone.now()
    )


def export_downloaded(*, actor: Actor, job: ExportJob) -> None:
    record(
        action="audit.export_download",
        actor=actor,
        details={"job": job.id, "format": job.format, "sha256": job.sha256},
    )


def filename(job: ExportJob) -> str:
    stamp = job.created_at.strftime("%Y%m%dT%H%M%SZ")
    return f"audit-{stamp}-{job.id}.{EXTENSIONS[job.format]}"


# A job running longer than this lost its worker (a task is acknowledged when done, so a
# broker's job was redelivered; an embedded thread's was not): it is marked failed.
STALE = timedelta(hours=6)


def expire_jobs(storage: Storage | None = None) -> int:
    """Remove the files of jobs past their expiry; returns how many."""
    storage = storage or get_storage()
    now = timezone.now()
    ExportJob.objects.filter(status=ExportJob.Status.RUNNING, started_at__lte=now - STALE).update(
        status=ExportJob.Status.FAILED, error="the export did not finish", finished_at=now
    )
    due = ExportJob.objects.filter(status=ExportJob.Status.DONE, expires_at__lte=now)
    removed = 0
    for job in due.iterator():
        storage.object_delete(job.storage_key)
        ExportJob.objects.filter(id=job.id, status=ExportJob.Status.DONE).update(
            status=ExportJob.Status.EXPIRED
        )
        removed += 1
    return removed

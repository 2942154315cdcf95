"""Exports too big for one request: written to the blob store in the background.

An export whose matching events number more than HUB_AUDIT_EXPORT_SYNC_LIMIT (or one
asked for as a job) becomes an ExportJob, queued in the database. A runner claims it there
(audit.export_runner), writes the file with the requester's visibility as it is then,
records its row count, size and sha256, and keeps it HUB_AUDIT_EXPORT_KEEP seconds. Its
download link is signed and valid HUB_AUDIT_EXPORT_LINK_TTL seconds; only the requester
(or a site administrator) may use it. export_runner.expire_jobs() (a periodic job)
removes the files of expired jobs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from audit.models import Event, ExportJob
from audit.queries import FILTERS, apply_filters, visible_events
from audit.recording import record
from hub.tasks import send_on_commit
from teams.permissions import Actor

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
    """With a broker, a worker claims the job at once. Without one, nothing is sent: the
    embedded scheduler claims it from the database within HUB_AUDIT_EXPORT_POLL_INTERVAL
    seconds, on whichever node (an eager task would hold this request for the export)."""
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return
    from audit.tasks import run_export

    send_on_commit(run_export, job_id)


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

"""Running export jobs: a queued job lives only in its row, and a runner claims it there.

Two runners, one code path (run_claimed): with Redis, `hub worker`'s audit.run_export
task claims the job it was sent for; with or without Redis, the periodic job
audit.run_exports (the embedded scheduler in every `hub serve` worker, or `hub beat`)
claims whatever is ready every HUB_AUDIT_EXPORT_POLL_INTERVAL seconds. Nothing about a
job is kept in a process's memory between requests, so any node may run any job.

A claim is one conditional UPDATE on the row as the claimer read it (its status and the
previous claim's token), so of two runners on any nodes exactly one wins. It holds a
lease of HUB_AUDIT_EXPORT_LEASE seconds that a heartbeat thread renews while the file is
written. A runner that dies stops renewing: once its lease lapses the job is claimed
again and written afresh under a new name, and the dead runner's file (if it got that
far) is removed. A runner that lost its claim (it stalled past its lease and another took
over) removes its own file instead of recording it: a job offers one whole file or none.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import secrets
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import TracebackType

from django.conf import settings
from django.db import DatabaseError, connection
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from audit import exporting
from audit.export_jobs import EXTENSIONS, PREFIX, matching
from audit.models import Event, ExportJob
from audit.queries import whole_chains
from registry.storage import Storage, StorageError, get_storage
from teams.permissions import Actor

log = logging.getLogger(__name__)

# A job whose runner died this many times is failed rather than claimed again: an export
# that kills its runner (memory, a timeout of the platform) would otherwise loop forever.
MAX_ATTEMPTS = 3
ABANDONED = "the export's runner stopped before it finished, {n} times"


@dataclass(frozen=True)
class Claim:
    """One runner's hold on one job: its token, and where this attempt writes."""

    job_id: int
    token: str
    name: str


class LeaseLost(Exception):
    """Another runner claimed the job: this attempt's file must not be offered."""


def _ready(now: datetime) -> Q:
    # A running job without a lease was started before leases existed: its runner is gone.
    lapsed = Q(lease_until__lt=now) | Q(lease_until__isnull=True)
    return Q(status=ExportJob.Status.QUEUED) | (Q(status=ExportJob.Status.RUNNING) & lapsed)


def _lease(now: datetime) -> datetime:
    return now + timedelta(seconds=settings.HUB_AUDIT_EXPORT_LEASE)


def claim(job_id: int | None = None, storage: Storage | None = None) -> Claim | None:
    """Take a job to run (that one, or the oldest ready): queued, or running with its lease
    lapsed. None when none is ready or another runner took it first."""
    now = timezone.now()
    ready = ExportJob.objects.filter(_ready(now)).order_by("id")
    if job_id is not None:
        ready = ready.filter(id=job_id)
    for job in ready.only("id", "format", "claim", "storage_key", "attempts")[:20]:
        # Compare and set: the row must still be as read (its claim token included).
        as_read = ExportJob.objects.filter(_ready(now), id=job.id, claim=job.claim)
        if job.attempts >= MAX_ATTEMPTS:
            failed = as_read.update(
                status=ExportJob.Status.FAILED,
                error=ABANDONED.format(n=job.attempts),
                finished_at=now,
                lease_until=None,
                storage_key="",
            )
            if failed:
                _remove(storage, job.storage_key)
            continue
        token = secrets.token_hex(16)
        name = f"{PREFIX}/{job.id:012d}-{token[:16]}.{EXTENSIONS[job.format]}"
        won = as_read.update(
            status=ExportJob.Status.RUNNING,
            claim=token,
            lease_until=_lease(now),
            started_at=now,
            attempts=F("attempts") + 1,
            storage_key=name,
            error="",
        )
        if won:
            _remove(storage, job.storage_key)  # a dead runner's file, if it wrote one
            return Claim(job.id, token, name)
    return None


def _remove(storage: Storage | None, name: str) -> None:
    if name:
        with contextlib.suppress(StorageError):
            (storage or get_storage()).object_delete(name)


def _holding(held: Claim) -> Q:
    return Q(id=held.job_id, claim=held.token, status=ExportJob.Status.RUNNING)


def renew(held: Claim) -> bool:
    """Move the lease on; False when the claim is no longer this runner's."""
    return bool(ExportJob.objects.filter(_holding(held)).update(lease_until=_lease(timezone.now())))


class Heartbeat:
    """A thread that renews the claim's lease every third of it while the file is written
    (the writing thread may sit in one long query); `lost` once another runner has it."""

    def __init__(self, held: Claim) -> None:
        self.held = held
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"audit-export-lease-{held.job_id}", daemon=True
        )

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        every = settings.HUB_AUDIT_EXPORT_LEASE / 3
        try:
            while not self._stop.wait(every):
                try:
                    if not renew(self.held):
                        self.lost.set()
                        return
                except DatabaseError:  # the database may be restarting: the next beat retries
                    log.warning("audit export %s: lease not renewed", self.held.job_id)
        finally:
            connection.close()  # this thread's own connection

    def check(self) -> None:
        if self.lost.is_set():
            raise LeaseLost


class _Digest:
    """Encodes the export's text, hashing and counting the bytes on their way out, and
    stops the write once the claim is lost."""

    def __init__(self, heartbeat: Heartbeat) -> None:
        self.sha256 = hashlib.sha256()
        self.heartbeat = heartbeat

    def bytes(self, lines: Iterable[str]) -> Iterator[bytes]:
        for text in lines:
            self.heartbeat.check()
            data = text.encode()
            self.sha256.update(data)
            yield data


def run_claimed(held: Claim, storage: Storage | None = None) -> ExportJob | None:
    """Write the claimed job's export to the store and record it; None if the claim was
    lost on the way (the runner that took it over writes the file)."""
    storage = storage or get_storage()
    job = ExportJob.objects.select_related("requester").filter(id=held.job_id).first()
    if job is None:  # its requester's account was removed since
        return None
    try:
        with Heartbeat(held) as heartbeat:
            # What the requester may read now: they may have lost an organisation since.
            actor = Actor(user=job.requester, method="session")
            events: QuerySet[Event] = Event.objects.none()
            if job.requester.is_active:
                events = matching(actor, job.filters)
            export = exporting.stream(job.format, events, whole_chains(job.filters))
            digest = _Digest(heartbeat)
            lines = exporting.one_snapshot(iter(export), events.db)
            size = storage.object_write(held.name, digest.bytes(lines))
            heartbeat.check()
    except LeaseLost:
        log.warning("audit export %s: claim lost, another runner writes it", job.id)
        _remove(storage, held.name)
        return None
    except Exception as exc:
        log.exception("audit export %s failed", job.id)
        _remove(storage, held.name)
        now = timezone.now()
        failed = ExportJob.objects.filter(_holding(held)).update(
            status=ExportJob.Status.FAILED,
            error=str(exc)[:2000],
            finished_at=now,
            lease_until=None,
            storage_key="",
        )
        return _reloaded(job) if failed else None
    now = timezone.now()
    done = ExportJob.objects.filter(_holding(held)).update(
        status=ExportJob.Status.DONE,
        row_count=export.count,
        size=size,
        sha256=digest.sha256.hexdigest(),
        finished_at=now,
        expires_at=now + timedelta(seconds=settings.HUB_AUDIT_EXPORT_KEEP),
        lease_until=None,
    )
    if not done:  # another runner took the job over while this one stalled
        _remove(storage, held.name)
        return None
    return _reloaded(job)


def _reloaded(job: ExportJob) -> ExportJob:
    job.refresh_from_db()
    return job


def run_job(job_id: int, storage: Storage | None = None) -> ExportJob | None:
    """Claim this job and run it (audit.run_export); None if it is not ready (run or
    running elsewhere, or gone)."""
    held = claim(job_id, storage)
    return run_claimed(held, storage) if held is not None else None


def run_ready(storage: Storage | None = None) -> ExportJob | None:
    """Claim the oldest ready job and run it (audit.run_exports); None if none is ready.
    One per round: the embedded scheduler's thread has other periodic jobs to run."""
    held = claim(None, storage)
    return run_claimed(held, storage) if held is not None else None


def expire_jobs(storage: Storage | None = None) -> int:
    """Remove the files of jobs past their expiry, and files no job holds (a runner that
    died between writing and recording); returns how many expired."""
    storage = storage or get_storage()
    now = timezone.now()
    due = ExportJob.objects.filter(status=ExportJob.Status.DONE, expires_at__lte=now)
    removed = 0
    for job in due.iterator():
        storage.object_delete(job.storage_key)
        ExportJob.objects.filter(id=job.id, status=ExportJob.Status.DONE).update(
            status=ExportJob.Status.EXPIRED
        )
        removed += 1
    # Listed before the jobs are read: a file listed exists, so its claim was committed.
    names = storage.object_list(PREFIX)
    held = ExportJob.objects.filter(
        status__in=(ExportJob.Status.RUNNING, ExportJob.Status.DONE)
    ).values_list("storage_key", flat=True)
    for name in set(names) - set(held):
        storage.object_delete(name)
    return removed

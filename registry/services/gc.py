"""Online garbage collection: untagged manifests (by each repository's policy) and blobs
that no manifest references, removed while pushes and pulls go on.

Decisions come from the database alone, never from a walk of the store:

- A manifest goes when its repository has a policy (`untagged_manifest_hours`) and it is
  not live. Live are: tagged manifests, manifests younger than the policy, and, from
  those, every manifest a live index lists, every referrer of a live manifest, and the
  subject of a live referrer. So an index keeps its children and a signature its image
  (and the other way round) for as long as one of them is kept.
- A blob goes when no manifest in any repository references it, and nothing touched it
  (upload, mount, pull, `last_referenced_at`) nor linked it into a repository within
  the grace period.

Pushes run meanwhile. Each batch locks what it is about to delete FOR UPDATE SKIP LOCKED
and checks it again in a fresh statement; a push locks what its manifest references (FOR
KEY SHARE) and an upload or mount updates the blob row, so either the push holds the
row and the collection skips it, or the collection deletes it first and the push finds
it gone (MANIFEST_BLOB_UNKNOWN, or the upload writes the bytes anew). Bytes leave the
store only after the rows' deletion is committed, under the digest's lock that finishing
an upload also takes, and only when no row for the digest has appeared since.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone

import audit
from hub import metrics
from registry.locks import collection_lock, digest_locks
from registry.models import Blob, GcRun, Manifest, ManifestChild, Repository, RepositoryBlob, Tag
from registry.storage import StorageError, get_storage

log = logging.getLogger(__name__)

BATCH = 1000
# A blob pulled is touched again when its last touch is older than this part of the grace.
TOUCH_FRACTION = 0.5
ManifestBlob = Manifest.blobs.through


@dataclass
class GcReport:
    dry_run: bool
    grace_seconds: int
    skipped: bool = False  # another collection was running
    manifests: list[tuple[str, str, int]] = field(default_factory=list)  # repo, digest, size
    blobs: list[tuple[str, int]] = field(default_factory=list)  # digest, size
    run_id: int | None = None

    @property
    def bytes_freed(self) -> int:
        return sum(size for _, size in self.blobs)

    def summary(self) -> dict[str, Any]:
        return {
            "run": self.run_id,
            "skipped": self.skipped,
            "dry_run": self.dry_run,
            "manifests_removed": len(self.manifests),
            "blobs_removed": len(self.blobs),
            "bytes_freed": self.bytes_freed,
        }


def collect(*, grace_seconds: int | None = None, dry_run: bool = False) -> GcReport:
    """Run one collection now (or, with `dry_run`, report exactly what it would remove)."""
    grace = settings.HUB_GC_GRACE_SECONDS if grace_seconds is None else max(grace_seconds, 0)
    report = GcReport(dry_run=dry_run, grace_seconds=grace)
    with collection_lock() as mine:
        if not mine:
            report.skipped = True
            return report
        run = GcRun.objects.create(started_at=timezone.now(), dry_run=dry_run, grace_seconds=grace)
        report.run_id = run.pk
        now = timezone.now()
        cutoff = now - timedelta(seconds=grace)
        doomed: set[int] = set()
        for repository in Repository.objects.filter(untagged_manifest_hours__isnull=False):
            hours = repository.untagged_manifest_hours or 0
            removable = removable_manifests(repository.pk, now - timedelta(hours=hours))
            if dry_run:
                doomed |= removable
                report.manifests += _described(repository.name, removable)
            else:
                report.manifests += _remove_manifests(repository, removable, now, hours)
        if dry_run:
            report.blobs = list(
                garbage_blobs(cutoff, ignoring=doomed).values_list("digest", "size")
            )
        else:
            try:
                report.blobs = _remove_blobs(cutoff)
            except Exception:
                metrics.GC_RUNS.labels(outcome="failure").inc()
                raise
        _finish(run, report)
    if not dry_run:
        metrics.GC_RUNS.labels(outcome="success").inc()
        metrics.GC_BYTES_FREED.inc(report.bytes_freed)
        metrics.GC_BLOBS_DELETED.inc(len(report.blobs))
    return report


def _finish(run: GcRun, report: GcReport) -> None:
    run.finished_at = timezone.now()
    run.manifests_removed = len(report.manifests)
    run.blobs_removed = len(report.blobs)
    run.bytes_freed = report.bytes_freed
    with transaction.atomic():
        run.save()
        audit.record(
            action="gc.dry_run" if report.dry_run else "gc.run",
            details={
                **report.summary(),
                "grace_seconds": report.grace_seconds,
                "manifests": [f"{repo}@{digest}" for repo, digest, _ in report.manifests[:100]],
            },
        )


# --- manifests -------------------------------------------------------------------------------


def removable_manifests(repository_id: int, young_after: datetime) -> set[int]:
    """Ids of the repository's manifests that are not live (see the module's docstring)."""
    rows = list(
        Manifest.objects.filter(repository_id=repository_id).values_list(
            "id", "digest", "subject_digest", "created_at"
        )
    )
    tagged = set(
        Tag.objects.filter(repository_id=repository_id).values_list("manifest_id", flat=True)
    )
    children: dict[int, list[int]] = defaultdict(list)
    for parent, child in ManifestChild.objects.filter(
        parent__repository_id=repository_id
    ).values_list("parent_id", "child_id"):
        children[parent].append(child)
    by_digest = {digest: pk for pk, digest, _, _ in rows}
    subject_of = {pk: by_digest.get(subject) for pk, _, subject, _ in rows if subject}
    referrers: dict[int, list[int]] = defaultdict(list)
    for pk, subject_id in subject_of.items():
        if subject_id is not None:
            referrers[subject_id].append(pk)
    live = {pk for pk, _, _, created in rows if pk in tagged or created >= young_after}
    stack = list(live)
    while stack:
        pk = stack.pop()
        subject = subject_of.get(pk)
        for other in [*children[pk], *referrers[pk], *([subject] if subject else [])]:
            if other not in live:
                live.add(other)
                stack.append(other)
    return {pk for pk, _, _, _ in rows} - live


def _described(repository: str, ids: Iterable[int]) -> list[tuple[str, str, int]]:
    rows = Manifest.objects.filter(id__in=list(ids)).order_by("digest")
    return [(repository, digest, size) for digest, size in rows.values_list("digest", "size")]


def _remove_manifests(
    repository: Repository, candidates: set[int], now: datetime, hours: int
) -> list[tuple[str, str, int]]:
    """Delete the candidates still removable once locked, a batch at a time."""
    removed: list[tuple[str, str, int]] = []
    # Newest first: an index comes after its children, so it goes in an earlier batch.
    pending = sorted(candidates, reverse=True)
    while pending:
        batch, pending = pending[:BATCH], pending[BATCH:]
        with transaction.atomic():
            locked = set(
                Manifest.objects.filter(id__in=batch)
                .select_for_update(skip_locked=True)
                .values_list("id", flat=True)
            )
            # Looked at again now that no push can change them: tags, indexes and referrers
            # committed since the first look count.
            young_after = now - timedelta(hours=hours)
            doomed = locked & removable_manifests(repository.pk, young_after)
            doomed = _closed_under_parents(repository.pk, doomed)
            if not doomed:
                continue
            described = _described(repository.name, doomed)
            ManifestChild.objects.filter(parent_id__in=doomed).delete()
            ManifestBlob.objects.filter(manifest_id__in=doomed).delete()
            Manifest.objects.filter(id__in=doomed).delete()
            removed += described
    return removed


def _closed_under_parents(repository_id: int, doomed: set[int]) -> set[int]:
    """Drop from `doomed` every manifest an index that stays (or a referrer that stays) needs."""
    edges = list(
        ManifestChild.objects.filter(parent__repository_id=repository_id).values_list(
            "parent_id", "child_id"
        )
    )
    subjects = dict(
        Manifest.objects.filter(repository_id=repository_id)
        .exclude(subject_digest="")
        .values_list("id", "subject_digest")
    )
    digests = dict(Manifest.objects.filter(id__in=list(doomed)).values_list("id", "digest"))
    changed = True
    while changed:
        changed = False
        needed = {child for parent, child in edges if child in doomed and parent not in doomed}
        kept_subjects = {subject for pk, subject in subjects.items() if pk not in doomed}
        needed |= {pk for pk in doomed if digests[pk] in kept_subjects}
        if needed:
            doomed -= needed
            changed = True
    return doomed


# --- blobs -----------------------------------------------------------------------------------


def garbage_blobs(cutoff: datetime, *, ignoring: set[int] | None = None) -> QuerySet[Blob]:
    """Blobs no manifest references (but those in `ignoring`), untouched since `cutoff`."""
    references = ManifestBlob.objects.filter(blob_id=OuterRef("pk"))
    if ignoring:
        references = references.exclude(manifest_id__in=list(ignoring))
    young_links = RepositoryBlob.objects.filter(blob_id=OuterRef("pk"), created_at__gte=cutoff)
    return (
        Blob.objects.filter(last_referenced_at__lt=cutoff)
        .filter(~Exists(references), ~Exists(young_links))
        .order_by("id")
    )


def _remove_blobs(cutoff: datetime) -> list[tuple[str, int]]:
    removed: list[tuple[str, int]] = []
    after = 0
    while True:
        ids = list(garbage_blobs(cutoff).filter(id__gt=after).values_list("id", flat=True)[:BATCH])
        if not ids:
            return removed
        after = ids[-1]
        with transaction.atomic():
            locked = list(
                Blob.objects.filter(id__in=ids, last_referenced_at__lt=cutoff)
                .select_for_update(skip_locked=True)
                .values_list("id", flat=True)
            )
            # Checked again in a fresh statement, now that no push can take them.
            rows = list(
                garbage_blobs(cutoff).filter(id__in=locked).values_list("id", "digest", "size")
            )
            gone = [pk for pk, _, _ in rows]
            RepositoryBlob.objects.filter(blob_id__in=gone).delete()
            Blob.objects.filter(id__in=gone).delete()
        _remove_bytes([digest for _, digest, _ in rows])
        removed += [(digest, size) for _, digest, size in rows]


def _remove_bytes(digests: list[str]) -> None:
    """Remove the bytes of blobs whose rows are deleted (committed), unless one came back."""
    if not digests:
        return
    try:
        with transaction.atomic():
            digest_locks(digests)
            back = set(Blob.objects.filter(digest__in=digests).values_list("digest", flat=True))
            get_storage().blobs_delete([digest for digest in digests if digest not in back])
    except StorageError:
        # Only space is lost: the rows are gone, so nothing will ever serve these bytes.
        log.exception("could not remove %d blobs from the store", len(digests))


def touch_blob(blob_id: int, last_referenced_at: datetime) -> bool:
    """A pull or HEAD of a blob: move its touch forward when it is getting old; returns
    False when a collection deleted it meanwhile (the caller answers BLOB_UNKNOWN)."""
    if settings.HUB_GC_GRACE_SECONDS == 0:
        # No grace: a collection's cutoff is now, so a touch protects nothing; the write
        # on every request would only cost.
        return Blob.objects.filter(pk=blob_id).exists()
    now = timezone.now()
    stale = now - timedelta(seconds=settings.HUB_GC_GRACE_SECONDS * TOUCH_FRACTION)
    if last_referenced_at >= stale:
        return True
    return bool(Blob.objects.filter(pk=blob_id).update(last_referenced_at=now))

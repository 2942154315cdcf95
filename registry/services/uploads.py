"""Blob uploads: sessions that stream into the store and hash as the bytes pass.

A session's size, running hash and store state are saved together after each
request, so the next request may come to any worker of any app process. While
a request streams into a session it holds a short, renewed lease on it.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

import audit
from hub import metrics
from hub.tasks import send_on_commit
from registry.digests import Digest, PlainHash, ResumableHash
from registry.errors import RegistryError
from registry.leases import Lease
from registry.locks import digest_lock
from registry.models import Blob, Repository, RepositoryBlob, Upload
from registry.policies import rules
from registry.storage import StorageError, get_storage
from registry.storage.base import StorageState
from registry.tasks import remove_upload_data

log = logging.getLogger(__name__)

# How long a cleanup round holds an idle session it removes (registry.leases has the
# leases of requests, which a heartbeat renews).
EXPIRE_CLAIM_SECONDS = 60

_CONTENT_RANGE_RE = re.compile(r"^(?:bytes[= ])?(\d{1,19})-(\d{1,19})(?:/(?:\d{1,19}|\*))?$")


@dataclass(frozen=True)
class ContentRange:
    start: int
    end: int  # inclusive

    @property
    def length(self) -> int:
        return self.end - self.start + 1


def parse_content_range(value: str) -> ContentRange:
    """`start-end`, with or without the `bytes=`/`bytes ` prefix clients add."""
    match = _CONTENT_RANGE_RE.match(value.strip())
    if not match:
        raise RegistryError(
            "BLOB_UPLOAD_INVALID",
            "invalid Content-Range",
            detail={"Content-Range": value[:100]},
            status=416,
        )
    start, end = int(match.group(1)), int(match.group(2))
    if end < start:
        raise RegistryError(
            "BLOB_UPLOAD_INVALID", "Content-Range ends before it starts", status=416
        )
    return ContentRange(start, end)


def upload_range_header(size: int) -> str:
    # distribution answers 0-0 for an empty session; clients expect that form.
    return f"0-{max(size - 1, 0)}"


def upload_start(
    *, repository: Repository, owner: str = "", hash_algorithm: str = "sha256"
) -> Upload:
    open_sessions = Upload.objects.filter(repository=repository).count()
    if open_sessions >= settings.HUB_UPLOADS_PER_REPOSITORY:
        raise RegistryError(
            "TOOMANYREQUESTS",
            f"this repository has {open_sessions} open uploads; finish or cancel some first",
        )
    upload = Upload(
        repository=repository,
        owner=owner,
        hash_algorithm=hash_algorithm,
        updated_at=timezone.now(),
    )
    upload.storage_state = get_storage().upload_create(str(upload.id))
    upload.hash_state = _initial_state(hash_algorithm)
    upload.save(force_insert=True)
    return upload


def _initial_state(algorithm: str) -> bytes | None:
    return ResumableHash(algorithm).state() if ResumableHash.available() else None


def upload_get(*, repository: Repository, upload_id: str, owner: str | None = None) -> Upload:
    """The session, if it belongs to this repository (and owner) and has not expired."""
    try:
        upload = Upload.objects.get(pk=uuid.UUID(upload_id), repository=repository)
        if owner is not None and upload.owner != owner:
            raise Upload.DoesNotExist
    except (Upload.DoesNotExist, ValueError):
        raise RegistryError("BLOB_UPLOAD_UNKNOWN", detail={"uuid": upload_id[:100]}) from None
    now = timezone.now()
    if upload.updated_at < now - timedelta(seconds=settings.HUB_UPLOAD_IDLE_TIMEOUT):
        if _expire(upload.pk, now=now) is not None:
            raise RegistryError("BLOB_UPLOAD_UNKNOWN", "upload expired", detail={"uuid": upload_id})
    return upload


def _idle(now: datetime) -> Q:
    """Sessions idle for longer than the timeout that no request is streaming into.

    A live lease means a request is writing (for longer than the idle timeout, perhaps):
    the session is not idle.
    """
    cutoff = now - timedelta(seconds=settings.HUB_UPLOAD_IDLE_TIMEOUT)
    return Q(updated_at__lt=cutoff) & (Q(lease_until__isnull=True) | Q(lease_until__lt=now))


def _expire(pk: uuid.UUID, *, now: datetime) -> bool | None:
    """Remove one idle session: True when it is gone, False when it is claimed but its data
    could not be removed yet, None when a request holds it (it is not idle then).

    The session is first claimed with a lease, as a request would, so a writer arriving
    meanwhile finds it taken; its data goes next, and only then its row: a store failure
    leaves the row (still claimed, so expired for clients) to the next cleanup round,
    never data that no row points at.
    """
    token = secrets.token_hex(8)
    until = now + timedelta(seconds=EXPIRE_CLAIM_SECONDS)
    if not Upload.objects.filter(_idle(now), pk=pk).update(lease_token=token, lease_until=until):
        return None
    state = Upload.objects.filter(pk=pk).values_list("storage_state", flat=True).first()
    try:
        get_storage().upload_abort(str(pk), state or {})
    except StorageError:
        log.warning("could not remove the data of upload %s; will retry", pk, exc_info=True)
        return False
    return bool(Upload.objects.filter(pk=pk, lease_token=token).delete()[0])


def uploads_expire(*, now: datetime | None = None, limit: int = 1000) -> int:
    """Remove up to `limit` sessions idle for longer than HUB_UPLOAD_IDLE_TIMEOUT, with their
    data in the store (S3: the multipart upload is aborted); returns how many went.

    Idempotent and safe beside requests (see _expire).
    """
    now = now or timezone.now()
    removed = 0
    for pk in list(
        Upload.objects.filter(_idle(now))
        .order_by("updated_at")
        .values_list("pk", flat=True)[:limit]
    ):
        removed += bool(_expire(pk, now=now))
    return removed


def upload_discard(*, upload: Upload) -> None:
    """Cancel a session and remove its data."""
    get_storage().upload_abort(str(upload.id), upload.storage_state)
    Upload.objects.filter(pk=upload.pk).delete()


class _Lease(Lease):
    """registry.leases.Lease, with what losing it means for an upload."""

    def __init__(self, upload: Upload) -> None:
        super().__init__(upload.pk)

    def check(self) -> None:
        """Before writing on: the session must still be ours (a heartbeat renews it)."""
        if not self.held():
            raise self.lost(None)

    def confirm(self, upload: Upload) -> None:
        """Before acting on what was written: the session must still be ours."""
        if not self.renew():
            raise self.lost(upload.storage_state)

    def gone(self) -> RegistryError:
        """The error for a request whose lease is gone, the store left as it is."""
        self.forget()
        if Upload.objects.filter(pk=self.upload_id).exists():
            return RegistryError("BLOB_UPLOAD_INVALID", "the upload was taken over", status=409)
        return RegistryError("BLOB_UPLOAD_UNKNOWN", detail={"uuid": str(self.upload_id)})

    def lost(self, written: StorageState | None) -> RegistryError:
        """The error for a request whose lease is gone, after removing what it wrote
        if the session itself is gone (cancelled or expired while the request streamed)."""
        error = self.gone()
        if error.code != "BLOB_UPLOAD_UNKNOWN":
            return error
        # Nobody will save a state naming what this request added: remove it (the backends
        # remove everything under the session, whatever the state says).
        get_storage().upload_abort(str(self.upload_id), written or {})
        return error

    def save(self, upload: Upload) -> bool:
        if not super().save(upload):
            raise self.lost(upload.storage_state)
        return True


def _hashing(
    chunks: Iterable[bytes], hasher: ResumableHash | PlainHash | None, lease: _Lease
) -> Iterator[bytes]:
    for chunk in chunks:
        if hasher is not None:
            hasher.update(chunk)
        lease.check()
        yield chunk


def _write(upload: Upload, lease: _Lease, chunks: Iterable[bytes]) -> None:
    """Stream `chunks` into the session at its size; updates `upload` in place (unsaved)."""
    hasher = ResumableHash.load(upload.hash_algorithm, upload.hash_state)
    state, written = get_storage().upload_write(
        str(upload.id), upload.storage_state, upload.size, _hashing(chunks, hasher, lease)
    )
    upload.storage_state = state
    upload.size += written
    metrics.BYTES_PUSHED.inc(written)
    upload.hash_state = hasher.state() if hasher is not None else None


def _check_range(upload: Upload, content_range: ContentRange | None, length: int | None) -> None:
    if content_range is None:
        return
    if content_range.start != upload.size:
        raise RegistryError(
            "BLOB_UPLOAD_INVALID",
            f"chunk starts at {content_range.start}, the upload is at {upload.size}",
            status=416,
            headers={
                "Range": upload_range_header(upload.size),
                "Location": upload_location(upload),
                "Docker-Upload-UUID": str(upload.id),
            },
        )
    if length is not None and length != content_range.length:
        raise RegistryError(
            "SIZE_INVALID",
            "Content-Length does not match Content-Range",
            detail={"Content-Length": length, "Content-Range": content_range.length},
        )


def upload_location(upload: Upload) -> str:
    return f"/v2/{upload.repository.name}/blobs/uploads/{upload.id}"


def upload_append(
    *,
    upload: Upload,
    chunks: Iterable[bytes],
    content_range: ContentRange | None = None,
    length: int | None = None,
) -> Upload:
    lease = _Lease(upload)
    current = lease.acquire()
    current.repository = upload.repository
    try:
        _check_range(current, content_range, length)
        _write(current, lease, chunks)
        lease.save(current)
    except BaseException:
        lease.release()
        raise
    return current


def upload_finish(
    *,
    upload: Upload,
    digest: Digest,
    chunks: Iterable[bytes] | None = None,
    content_range: ContentRange | None = None,
    length: int | None = None,
) -> Blob:
    """Append the last chunk (if any), verify the digest and make the blob visible."""
    lease = _Lease(upload)
    current = lease.acquire()
    current.repository = upload.repository
    try:
        if chunks is not None:
            _check_range(current, content_range, length)
            _write(current, lease, chunks)
        computed = _computed_digest(current, digest.algorithm)
        if computed != str(digest):
            upload_discard(upload=current)
            raise RegistryError(
                "DIGEST_INVALID",
                detail={"expected": str(digest), "computed": computed, "size": current.size},
            )
        try:
            rules.check_room(current.repository, incoming=current.size, digest=str(digest))
        except RegistryError:
            upload_discard(upload=current)
            raise
        lease.confirm(current)  # not cancelled while the last chunk streamed
        # Durable before the transaction: on SQLite its write lock stops every other writer.
        get_storage().upload_sync(str(current.id), current.storage_state)
        with transaction.atomic():
            # A collection removing this digest's bytes holds the lock exclusively.
            digest_lock(str(digest), shared=True)
            blob, stored_before = _blob_record(current, str(digest))
            _link(current.repository, blob)
            # Only the lease holder publishes: a request that lost it (its process stalled
            # past the lease) rolls all of this back and leaves the session to the taker.
            if not Upload.objects.filter(pk=current.pk, lease_token=lease.token).delete()[0]:
                raise lease.gone()
            audit.record(
                action="blob.upload",
                repository=current.repository.name,
                digest=blob.digest,
                details={"size": blob.size},
            )
            if stored_before:  # the store has the blob: this session's data goes
                send_on_commit(remove_upload_data, str(current.id), current.storage_state)
        lease.forget()
        metrics.UPLOAD_DURATION.observe((timezone.now() - current.created_at).total_seconds())
        return blob
    except BaseException:
        lease.release()
        raise


def _computed_digest(upload: Upload, algorithm: str) -> str:
    if algorithm == upload.hash_algorithm:
        hasher = ResumableHash.load(algorithm, upload.hash_state)
        if hasher is not None:
            return hasher.digest()
    # Another algorithm than the one we hashed with (or no saved state): read it back.
    h = hashlib.new(algorithm)
    for chunk in get_storage().upload_read(str(upload.id), upload.storage_state):
        h.update(chunk)
    return f"{algorithm}:{h.hexdigest()}"


def _blob_record(upload: Upload, digest: str) -> tuple[Blob, bool]:
    """The blob row, touched (and locked until commit) if it exists, else the upload's bytes
    committed to the store and the row made; and whether it existed already.

    Touching the row waits for a collection that is deleting it, and then finds it gone: the
    bytes are then written anew (the collection removes them only after our commit, and
    only if no row for the digest exists by then).
    """
    for _ in range(3):
        if Blob.objects.filter(digest=digest).update(last_referenced_at=timezone.now()):
            return Blob.objects.get(digest=digest), True
        get_storage().upload_commit(str(upload.id), upload.storage_state, digest)
        try:
            with transaction.atomic():
                return Blob.objects.create(digest=digest, size=upload.size), False
        except IntegrityError:
            continue  # a concurrent upload of the same digest made it first: touch theirs
    raise RegistryError("BLOB_UPLOAD_INVALID", "the blob is busy; try again", status=409)


def _link(repository: Repository, blob: Blob) -> None:
    if RepositoryBlob.objects.filter(repository=repository, blob=blob).exists():
        return
    try:
        with transaction.atomic():
            RepositoryBlob.objects.create(repository=repository, blob=blob)
    except IntegrityError:
        pass  # linked by a concurrent request


def blob_put_monolithic(
    *, repository: Repository, digest: Digest, chunks: Iterable[bytes], owner: str = ""
) -> Blob:
    upload = upload_start(repository=repository, owner=owner, hash_algorithm=digest.algorithm)
    try:
        return upload_finish(upload=upload, digest=digest, chunks=chunks)
    except BaseException:
        # Nothing of a failed monolithic upload is kept: there is no session to resume.
        if Upload.objects.filter(pk=upload.pk).exists():
            upload_discard(upload=upload)
        raise


def blob_mount(*, repository: Repository, source: Repository, digest: Digest) -> Blob | None:
    blob = Blob.objects.filter(digest=str(digest), repository_links__repository=source).first()
    if blob is None:
        return None
    rules.check_room(repository, incoming=blob.size, digest=blob.digest)
    with transaction.atomic():
        # Touched (and locked) first: a collection that deleted it meanwhile leaves nothing
        # to mount, and the client uploads the blob instead.
        if not Blob.objects.filter(pk=blob.pk).update(last_referenced_at=timezone.now()):
            return None
        _link(repository, blob)
        audit.record(
            action="blob.mount",
            repository=repository.name,
            digest=blob.digest,
            details={"from": source.name, "size": blob.size},
        )
    return blob

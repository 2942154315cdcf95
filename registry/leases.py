"""Upload leases: which request may write to an upload session, across workers and nodes.

A request that writes to a session claims it in the database for LEASE_SECONDS. While the
request lives, one heartbeat thread per process renews every lease the process holds each
HEARTBEAT_SECONDS, whatever the request is doing (reading a slow client, uploading a part,
copying a big blob at commit): a live holder never loses its lease, and the lease of a
holder that died (a killed node, whose request a proxy then sends elsewhere) lapses
within LEASE_SECONDS.

A request meeting a held lease waits for it, at most WAIT_SECONDS: it takes the lease as
soon as it is released or lapses, and gives up at once (409) when it sees the holder renew
it, as only a live holder does. So a retried request waits out a dead holder (a few
seconds), and a second writer beside a live one is still refused.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
import uuid
from datetime import datetime, timedelta

from django.db import DatabaseError, connections
from django.db.models import Q
from django.utils import timezone

from registry.errors import RegistryError
from registry.models import Upload

log = logging.getLogger(__name__)

LEASE_SECONDS = 10.0
HEARTBEAT_SECONDS = 2.0
WAIT_SECONDS = LEASE_SECONDS + 2.0  # longer than a dead holder's lease can still last
POLL_SECONDS = 0.2


class Lease:
    """One request's hold on one session. `acquire`, then `release` or `save` it."""

    def __init__(self, upload_id: uuid.UUID) -> None:
        self.upload_id = upload_id
        self.token = secrets.token_hex(8)
        # Set by the heartbeat when its renewal found the lease gone (or could not tell):
        # the request thread checks with the database before it writes on.
        self.suspect = False
        self.renewed_at = 0.0  # time.monotonic() of the last renewal that found it ours

    def acquire(self) -> Upload:
        deadline = time.monotonic() + WAIT_SECONDS
        seen: tuple[str, datetime | None] | None = None
        while not self._claim():
            row = Upload.objects.filter(pk=self.upload_id).values_list("lease_token", "lease_until")
            current = row.first()
            if current is None:
                raise RegistryError("BLOB_UPLOAD_UNKNOWN", detail={"uuid": str(self.upload_id)})
            renewed = (
                seen is not None
                and seen[0] == current[0]
                and seen[1] is not None
                and current[1] is not None
                and current[1] > seen[1]
            )
            if renewed or time.monotonic() >= deadline:
                raise RegistryError(
                    "BLOB_UPLOAD_INVALID", "another request is writing to this upload", status=409
                )
            seen = current
            _pause(POLL_SECONDS)
        self.renewed_at = time.monotonic()
        heartbeat.add(self)
        # Read the state only now that it can no longer change under us.
        return Upload.objects.get(pk=self.upload_id)

    def _claim(self) -> bool:
        now = timezone.now()
        return bool(
            Upload.objects.filter(pk=self.upload_id)
            .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
            .update(lease_token=self.token, lease_until=_until(now))
        )

    def renew(self) -> bool:
        """Extend the lease; False when it is no longer ours."""
        renewed = bool(
            Upload.objects.filter(pk=self.upload_id, lease_token=self.token).update(
                lease_until=_until(timezone.now())
            )
        )
        if renewed:
            self.renewed_at = time.monotonic()
        return renewed

    def held(self) -> bool:
        """Cheap enough for every chunk: asks the database only when the heartbeat found
        the lease gone, or has not renewed it for a while (stuck on the database, say)."""
        if not self.suspect and time.monotonic() - self.renewed_at < 2 * HEARTBEAT_SECONDS:
            return True
        self.suspect = False
        return self.renew()

    def forget(self) -> None:
        """The request is done with the session (finished it, or learnt it lost it)."""
        heartbeat.remove(self)

    def release(self) -> None:
        heartbeat.remove(self)
        Upload.objects.filter(pk=self.upload_id, lease_token=self.token).update(
            lease_token="", lease_until=None
        )

    def save(self, upload: Upload) -> bool:
        """Store the session's new state and release it; False when it was not ours."""
        heartbeat.remove(self)
        return bool(
            Upload.objects.filter(pk=self.upload_id, lease_token=self.token).update(
                size=upload.size,
                hash_state=upload.hash_state,
                storage_state=upload.storage_state,
                updated_at=timezone.now(),
                lease_token="",
                lease_until=None,
            )
        )


def _pause(seconds: float) -> None:
    time.sleep(seconds)


def _until(now: datetime) -> datetime:
    return now + timedelta(seconds=LEASE_SECONDS)


class Heartbeat:
    """Renews the leases of this process's requests from one thread, with its own database
    connection; the thread runs only while some lease is held."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._leases: dict[str, Lease] = {}
        self._thread: threading.Thread | None = None

    def add(self, lease: Lease) -> None:
        with self._lock:
            self._leases[lease.token] = lease
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="hub-lease-heartbeat", daemon=True
                )
                self._thread.start()

    def remove(self, lease: Lease) -> None:
        with self._lock:
            self._leases.pop(lease.token, None)

    def held(self) -> list[Lease]:
        with self._lock:
            return list(self._leases.values())

    def running(self) -> bool:
        with self._lock:
            return self._thread is not None

    def beat(self) -> None:
        """One round: renew every lease held now, in one UPDATE and one read however many
        uploads the process is serving; a lease no longer found is flagged."""
        leases = {lease.token: lease for lease in self.held()}
        if not leases:
            return
        try:
            mine = Upload.objects.filter(lease_token__in=leases)
            mine.update(lease_until=_until(timezone.now()))
            renewed = set(mine.values_list("lease_token", flat=True))
        except DatabaseError:
            # The request threads ask the database themselves; a connection left broken
            # is opened anew next round.
            renewed = set()
            log.warning("could not renew the leases of %d uploads", len(leases))
            connections["default"].close()
        now = time.monotonic()
        for token, lease in leases.items():
            if token in renewed:
                lease.renewed_at = now
            else:
                lease.suspect = True

    def _run(self) -> None:
        try:
            while True:
                time.sleep(HEARTBEAT_SECONDS)
                with self._lock:
                    if not self._leases:
                        self._thread = None
                        return
                self.beat()
        finally:
            connections.close_all()


heartbeat = Heartbeat()

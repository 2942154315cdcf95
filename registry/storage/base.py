"""The one interface every blob store implements.

Uploads are written in order, at the offset the database says the session has
reached; a backend never destroys anything the *previous* saved state refers
to, so a request that fails half-way leaves the session as it was before it.
"""

from __future__ import annotations

import abc
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

StorageState = dict[str, Any]


class StorageError(Exception):
    pass


class ObjectNotFound(StorageError):
    pass


class Storage(abc.ABC):
    name: str = ""

    # --- uploads ----------------------------------------------------------------------------

    @abc.abstractmethod
    def upload_create(self, upload_id: str) -> StorageState:
        """Prepare an empty upload; returns the state to keep with the session."""

    @abc.abstractmethod
    def upload_write(
        self, upload_id: str, state: StorageState, offset: int, chunks: Iterable[bytes]
    ) -> tuple[StorageState, int]:
        """Append `chunks` at `offset` (the session's size); returns (new state, bytes written)."""

    @abc.abstractmethod
    def upload_read(self, upload_id: str, state: StorageState) -> Iterator[bytes]:
        """The bytes written so far (to re-hash with another algorithm)."""

    def upload_sync(self, upload_id: str, state: StorageState) -> None:  # noqa: B027
        """Make the written bytes durable before the blob is published.

        Called outside the database transaction that publishes the blob, so the slow part
        (an fsync of a large file) holds no database lock; upload_commit stays short.
        """

    @abc.abstractmethod
    def upload_commit(self, upload_id: str, state: StorageState, digest: str) -> None:
        """Make the verified upload the blob `digest` (idempotent if the blob exists); its
        bytes were made durable by upload_sync before."""

    @abc.abstractmethod
    def upload_abort(self, upload_id: str, state: StorageState) -> None:
        """Remove whatever the upload wrote; no error if it is already gone."""

    # --- blobs ------------------------------------------------------------------------------

    @abc.abstractmethod
    def blob_exists(self, digest: str) -> bool: ...

    @abc.abstractmethod
    def blob_read(self, digest: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """Bytes [start, end] (inclusive end; None for the rest) of a blob, streamed."""

    def blob_path(self, digest: str) -> Path | None:
        """A local file holding the blob, for sendfile; None when the store is remote."""
        return None

    def blob_redirect_url(self, digest: str, *, media_type: str | None = None) -> str | None:
        """A URL the client may fetch the blob from directly; None to stream it through Hub."""
        return None

    @abc.abstractmethod
    def blob_delete(self, digest: str) -> None: ...

    # --- named objects (audit archives and other files Hub keeps beside the blobs) -----------

    @abc.abstractmethod
    def object_put(self, name: str, data: bytes) -> None:
        """Store `data` under `name` (see object_key), replacing it whole: a reader sees the
        old object or the new one, never part of one."""

    @abc.abstractmethod
    def object_get(self, name: str) -> bytes:
        """The object's bytes; ObjectNotFound when there is none."""

    @abc.abstractmethod
    def object_list(self, prefix: str) -> list[str]:
        """The names of the objects under `prefix` (a folder name such as "audit-archive"),
        sorted."""

    def object_write(self, name: str, chunks: Iterable[bytes]) -> int:
        """Like object_put, from a stream too big to hold in memory; returns its size."""
        data = b"".join(chunks)
        self.object_put(name, data)
        return len(data)

    def object_read(self, name: str) -> Iterator[bytes]:
        """The object's bytes, streamed; ObjectNotFound (before the first chunk) if none."""
        data = self.object_get(name)
        return iter([data])

    @abc.abstractmethod
    def object_delete(self, name: str) -> None:
        """Remove the object; no error if it is already gone."""

    def object_path(self, name: str) -> Path | None:
        """A local file holding the object, for sendfile; None when the store is remote."""
        return None

    def object_redirect_url(
        self, name: str, *, ttl: int, filename: str, content_type: str
    ) -> str | None:
        """A URL valid for `ttl` seconds to fetch the object directly; None to stream it."""
        return None

    def blobs_delete(self, digests: list[str]) -> None:
        """Delete many blobs (garbage collection); no error for those already gone."""
        for digest in digests:
            self.blob_delete(digest)

    def check(self) -> None:  # noqa: B027 - optional for backends
        """Raise StorageError when the store cannot be reached (for readiness)."""


def blob_key(digest: str) -> str:
    """Where a blob lives, relative to the store's root: blobs/sha256/ab/abcdef..."""
    algorithm, hex_ = digest.split(":", 1)
    return f"blobs/{algorithm}/{hex_[:2]}/{hex_}"


_OBJECT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*")


def object_key(name: str) -> str:
    """Where a named object lives, relative to the store's root: objects/<name>.

    Names are relative paths of plain parts (no "..", no leading "/"), so no name reaches
    outside objects/ or into the blobs.
    """
    if not _OBJECT_NAME.fullmatch(name) or len(name) > 512:
        raise StorageError(f"not a valid object name: {name[:100]!r}")
    return f"objects/{name}"

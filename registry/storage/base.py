"""The one interface every blob store implements.

Uploads are written in order, at the offset the database says the session has
reached; a backend never destroys anything the *previous* saved state refers
to, so a request that fails half-way leaves the session as it was before it.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

StorageState = dict[str, Any]


class StorageError(Exception):
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

    @abc.abstractmethod
    def upload_commit(self, upload_id: str, state: StorageState, digest: str) -> None:
        """Make the verified upload the blob `digest` (idempotent if the blob exists)."""

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

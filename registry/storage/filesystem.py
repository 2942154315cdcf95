"""Blobs in a local (or mounted network) folder; downloads go out with sendfile."""

from __future__ import annotations

import os
import queue
import threading
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from registry.storage.base import (
    ObjectNotFound,
    Storage,
    StorageError,
    StorageState,
    blob_key,
    object_key,
)

READ_SIZE = 1024 * 1024
# Chunks queued for the writer thread: bounds the memory one upload holds (about this many MiB).
WRITE_QUEUE_CHUNKS = 2


def _write_all(fd: int, chunk: bytes) -> int:
    view = memoryview(chunk)
    total = len(view)
    while view:
        n = os.write(fd, view)
        view = view[n:]
    return total


def _write_pipelined(fd: int, chunks: Iterable[bytes]) -> int:
    """Write `chunks` in order at fd's position; returns the bytes written.

    os.write() can block for a long time while the kernel writes dirty pages back.
    A helper thread does the writing so that the request thread receives (and,
    through `chunks`, hashes) the next chunk meanwhile; both release the GIL.
    The request thread keeps iterating `chunks` itself, so whatever the iterator
    does (database lease renewals) stays on its own thread and connection.
    """
    it = iter(chunks)
    first = next(it, None)
    if first is None:
        return 0
    second = next(it, None)
    if second is None:  # one chunk (most small blobs): no thread
        return _write_all(fd, first)

    pending: queue.Queue[bytes | None] = queue.Queue(maxsize=WRITE_QUEUE_CHUNKS)
    failure: list[BaseException] = []
    written = 0

    def writer() -> None:
        nonlocal written
        while (chunk := pending.get()) is not None:
            if failure:
                continue  # drain until the end marker so the producer never blocks
            try:
                written += _write_all(fd, chunk)
            except BaseException as exc:  # noqa: B036 - handed to the request thread
                failure.append(exc)

    thread = threading.Thread(target=writer, name="hub-upload-writer", daemon=True)
    thread.start()
    try:
        pending.put(first)
        pending.put(second)
        for chunk in it:
            if failure:
                break
            pending.put(chunk)
    finally:
        pending.put(None)
        thread.join()
    if failure:
        raise failure[0]
    return written


def _chunks(f: BinaryIO) -> Iterator[bytes]:
    with f:
        while chunk := f.read(READ_SIZE):
            yield chunk


class FilesystemStorage(Storage):
    name = "filesystem"

    def __init__(self, root: Path, *, fsync: bool = True) -> None:
        self.root = Path(root)
        self.fsync = fsync
        self.uploads = self.root / "uploads"
        self.uploads.mkdir(parents=True, exist_ok=True)
        (self.root / "blobs").mkdir(parents=True, exist_ok=True)

    def _upload_path(self, upload_id: str) -> Path:
        return self.uploads / upload_id

    def upload_create(self, upload_id: str) -> StorageState:
        self._upload_path(upload_id).touch()
        return {}

    def upload_write(
        self, upload_id: str, state: StorageState, offset: int, chunks: Iterable[bytes]
    ) -> tuple[StorageState, int]:
        written = 0
        path = self._upload_path(upload_id)
        try:
            fd = os.open(path, os.O_WRONLY)
        except FileNotFoundError:
            raise StorageError(f"upload data for {upload_id} is missing") from None
        try:
            # Write at the saved offset and cut what a failed request may have left beyond it.
            os.lseek(fd, offset, os.SEEK_SET)
            written = _write_pipelined(fd, chunks)
            os.ftruncate(fd, offset + written)
        finally:
            os.close(fd)
        return state, written

    def upload_read(self, upload_id: str, state: StorageState) -> Iterator[bytes]:
        with open(self._upload_path(upload_id), "rb") as f:
            while chunk := f.read(READ_SIZE):
                yield chunk

    def upload_sync(self, upload_id: str, state: StorageState) -> None:
        if not self.fsync:
            return
        try:
            fd = os.open(self._upload_path(upload_id), os.O_RDONLY)
        except FileNotFoundError:
            return  # committed already by a concurrent finish of the same session
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def upload_commit(self, upload_id: str, state: StorageState, digest: str) -> None:
        src = self._upload_path(upload_id)
        dst = self.root / blob_key(digest)
        if dst.exists():
            src.unlink(missing_ok=True)
            return
        dst.parent.mkdir(parents=True, exist_ok=True)
        # rename is atomic: a reader sees no file or the whole verified blob.
        os.replace(src, dst)
        if self.fsync:
            dir_fd = os.open(dst.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)

    def upload_abort(self, upload_id: str, state: StorageState) -> None:
        self._upload_path(upload_id).unlink(missing_ok=True)

    def blob_exists(self, digest: str) -> bool:
        return (self.root / blob_key(digest)).is_file()

    def blob_path(self, digest: str) -> Path | None:
        return self.root / blob_key(digest)

    def blob_read(self, digest: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        with open(self.root / blob_key(digest), "rb") as f:
            f.seek(start)
            remaining = None if end is None else end - start + 1
            while remaining is None or remaining > 0:
                chunk = f.read(READ_SIZE if remaining is None else min(READ_SIZE, remaining))
                if not chunk:
                    break
                if remaining is not None:
                    remaining -= len(chunk)
                yield chunk

    def blob_delete(self, digest: str) -> None:
        (self.root / blob_key(digest)).unlink(missing_ok=True)

    def object_put(self, name: str, data: bytes) -> None:
        path = self.root / object_key(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written beside it, then renamed: a reader sees the old object or the whole new one.
        temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        try:
            with open(temporary, "wb") as f:
                f.write(data)
                if self.fsync:
                    f.flush()
                    os.fsync(f.fileno())
            os.replace(temporary, path)
        finally:
            temporary.unlink(missing_ok=True)

    def object_write(self, name: str, chunks: Iterable[bytes]) -> int:
        path = self.root / object_key(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        size = 0
        try:
            with open(temporary, "wb") as f:
                for chunk in chunks:
                    f.write(chunk)
                    size += len(chunk)
                if self.fsync:
                    f.flush()
                    os.fsync(f.fileno())
            os.replace(temporary, path)
        finally:
            temporary.unlink(missing_ok=True)
        return size

    def object_read(self, name: str) -> Iterator[bytes]:
        try:
            f = open(self.root / object_key(name), "rb")  # noqa: SIM115 - closed by _chunks
        except FileNotFoundError:
            raise ObjectNotFound(f"no object {name}") from None
        return _chunks(f)

    def object_delete(self, name: str) -> None:
        (self.root / object_key(name)).unlink(missing_ok=True)

    def object_path(self, name: str) -> Path | None:
        path = self.root / object_key(name)
        return path if path.is_file() else None

    def object_get(self, name: str) -> bytes:
        try:
            return (self.root / object_key(name)).read_bytes()
        except FileNotFoundError:
            raise ObjectNotFound(f"no object {name}") from None

    def object_list(self, prefix: str) -> list[str]:
        base = self.root / "objects"
        folder = base / object_key(prefix.strip("/")).removeprefix("objects/")
        if not folder.is_dir():
            return []
        return sorted(
            str(path.relative_to(base))
            for path in folder.rglob("*")
            if path.is_file() and not path.name.startswith(".")
        )

    def check(self) -> None:
        if not os.access(self.root, os.W_OK):
            raise StorageError(f"{self.root} is not writable")

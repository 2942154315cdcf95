"""The S3 store's named objects (audit archives and export files), and the helpers it
shares with registry.storage.s3 (kept apart to keep that module a readable size)."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterable, Iterator
from typing import IO, Any, cast

import botocore.exceptions
from boto3.s3.transfer import TransferConfig

from registry.storage.base import ObjectNotFound, StorageError, object_key

READ_SIZE = 1024 * 1024

_BOTO_ERRORS = (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError)


def _error_code(exc: BaseException) -> str:
    if isinstance(exc, botocore.exceptions.ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


def _not_found(exc: BaseException) -> bool:
    return _error_code(exc) in ("404", "NoSuchKey", "NotFound")


@contextlib.contextmanager
def _s3_errors(what: str) -> Iterator[None]:
    """Turn botocore errors into StorageError (only around S3 calls, never around the chunks)."""
    try:
        yield
    except _BOTO_ERRORS as exc:
        raise StorageError(f"S3: {what}: {exc}") from exc


class _ChunkReader(io.RawIOBase):
    """A read-only file over an iterable of bytes, for boto3's upload_fileobj."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._rest = memoryview(b"")
        self.size = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._rest:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._rest = memoryview(chunk)
        n = min(len(buffer), len(self._rest))
        buffer[:n] = self._rest[:n]
        self._rest = self._rest[n:]
        self.size += n
        return n


class S3Objects:
    """Named objects on S3; mixed into S3Storage, whose client, bucket and keys it uses."""

    client: Any
    bucket: str
    part_size: int
    redirect: bool

    def _key(self, relative: str) -> str:
        raise NotImplementedError

    def _exists(self, key: str) -> bool:
        raise NotImplementedError

    def _get_chunks(self, key: str, *, what: str, byte_range: str | None = None) -> Iterator[bytes]:
        raise NotImplementedError

    def object_put(self, name: str, data: bytes) -> None:
        # One PUT: S3 shows the old object or the new one, never part of one.
        with _s3_errors(f"put {name}"):
            self.client.put_object(Bucket=self.bucket, Key=self._key(object_key(name)), Body=data)

    def object_write(self, name: str, chunks: Iterable[bytes]) -> int:
        # A managed (multipart past part_size) upload: the object appears whole at the end.
        # In this thread: the chunks may come from a database cursor, which is per thread.
        reader = _ChunkReader(chunks)
        config = TransferConfig(
            multipart_threshold=self.part_size,
            multipart_chunksize=self.part_size,
            use_threads=False,
        )
        with _s3_errors(f"put {name}"):
            self.client.upload_fileobj(
                cast(IO[bytes], reader), self.bucket, self._key(object_key(name)), Config=config
            )
        return reader.size

    def object_read(self, name: str) -> Iterator[bytes]:
        key = self._key(object_key(name))
        if not self._exists(key):
            raise ObjectNotFound(f"no object {name}")
        return self._get_chunks(key, what=f"read {name}")

    def object_delete(self, name: str) -> None:
        with _s3_errors(f"delete {name}"):
            self.client.delete_object(Bucket=self.bucket, Key=self._key(object_key(name)))

    def object_redirect_url(
        self, name: str, *, ttl: int, filename: str, content_type: str
    ) -> str | None:
        if not self.redirect:
            return None
        params = {
            "Bucket": self.bucket,
            "Key": self._key(object_key(name)),
            "ResponseContentType": content_type,
            "ResponseContentDisposition": f'attachment; filename="{filename}"',
        }
        with _s3_errors(f"presign {name}"):
            return str(
                self.client.generate_presigned_url("get_object", Params=params, ExpiresIn=ttl)
            )

    def object_get(self, name: str) -> bytes:
        with _s3_errors(f"get {name}"):
            try:
                response = self.client.get_object(
                    Bucket=self.bucket, Key=self._key(object_key(name))
                )
            except botocore.exceptions.ClientError as exc:
                if _not_found(exc):
                    raise ObjectNotFound(f"no object {name}") from None
                raise
            return bytes(response["Body"].read())

    def object_list(self, prefix: str) -> list[str]:
        folder = self._key(object_key(prefix.strip("/"))) + "/"
        root = self._key("objects") + "/"
        names: list[str] = []
        with _s3_errors(f"list {prefix}"):
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=folder
            )
            for page in pages:
                names += [item["Key"].removeprefix(root) for item in page.get("Contents", [])]
        return sorted(names)

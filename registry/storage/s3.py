"""Blobs in an S3 bucket (AWS, MinIO, Ceph RGW, ...); uploads stream into a multipart upload.

How an upload session lives in the bucket (all keys under the optional prefix):

    uploads/<id>/data-<token>            the multipart upload (MPU), created on the first full part
    uploads/<id>/tail-<end>-<token>      the bytes after the last full part (< part_size)

Clients send chunks of any size, but S3 parts must be at least 5 MiB (except the
last). A request fills a buffer of `part_size` and uploads a part each time it is
full; what is left when the request ends is put as a small "tail" object that the
next request reads back first. The state kept with the session holds the MPU id,
its parts ([number, etag, size]) and the tail's key and size.

The invariant of base.py holds because a request never touches what the saved
state refers to: part numbers only grow (a retry may overwrite a part that no saved
state lists, never one that one does) and tail keys are fresh for each request.
Stale tails and abandoned MPUs are removed at commit/abort by listing the prefix.

Commit completes the MPU (the tail becomes the last part) into `data-<token>` and
server-side copies that to the blob key, so a reader sees no blob or all of it.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Iterable, Iterator
from typing import Any, cast

import boto3
import botocore.exceptions
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

from registry.storage.base import Storage, StorageError, StorageState, blob_key
from registry.storage.s3_objects import (
    _BOTO_ERRORS,
    READ_SIZE,
    S3Objects,
    _error_code,
    _not_found,
    _s3_errors,
)

MAX_PARTS = 10_000
GiB = 1024**3


def _empty_state() -> StorageState:
    return {"mpu_key": None, "mpu_id": None, "parts": [], "tail": None, "tail_size": 0}


def _multipart_etag(etags: list[str]) -> str:
    """The ETag S3 gives a completed MPU: md5 of the parts' binary md5s, dash, part count."""
    joined = b"".join(bytes.fromhex(e.strip('"')) for e in etags)
    return f'"{hashlib.md5(joined, usedforsecurity=False).hexdigest()}-{len(etags)}"'


class S3Storage(S3Objects, Storage):
    name = "s3"

    def __init__(
        self,
        *,
        bucket: str,
        endpoint_url: str | None = None,
        region: str | None = "us-east-1",
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        prefix: str = "",
        redirect: bool = False,
        redirect_ttl: int = 600,
        part_size: int = 8 * 1024 * 1024,
    ) -> None:
        if not bucket:
            raise StorageError("S3: no bucket configured")
        if part_size < 5 * 1024 * 1024:
            raise StorageError("S3: part_size must be at least 5 MiB")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.redirect = redirect
        self.redirect_ttl = int(redirect_ttl)
        self.part_size = int(part_size)
        config = Config(
            # MinIO, Ceph and moto reject or mishandle the checksums newer botocore adds by default.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            retries={"max_attempts": 5, "mode": "standard"},
            max_pool_connections=32,
            # Presigned URLs default to SigV2, which AWS refuses for newer regions and buckets.
            signature_version="s3v4",
            s3={"addressing_style": "path"} if endpoint_url else None,
        )
        self.client = boto3.session.Session().client(
            "s3",
            endpoint_url=endpoint_url or None,
            region_name=region or None,
            aws_access_key_id=access_key_id or None,
            aws_secret_access_key=secret_access_key or None,
            config=config,
        )
        # CopyObject takes up to 5 GB in one request; beyond that, a multipart copy.
        self.copy_config = TransferConfig(multipart_threshold=5 * GiB, multipart_chunksize=GiB)

    # --- keys -------------------------------------------------------------------------------

    def _key(self, relative: str) -> str:
        return f"{self.prefix}/{relative}" if self.prefix else relative

    def _upload_prefix(self, upload_id: str) -> str:
        if not upload_id or "/" in upload_id:
            raise StorageError(f"invalid upload id {upload_id!r}")
        return self._key(f"uploads/{upload_id}/")

    # --- uploads ----------------------------------------------------------------------------

    def upload_create(self, upload_id: str) -> StorageState:
        self._upload_prefix(upload_id)
        return _empty_state()

    def upload_write(
        self, upload_id: str, state: StorageState, offset: int, chunks: Iterable[bytes]
    ) -> tuple[StorageState, int]:
        state = {**_empty_state(), **(state or {})}
        parts: list[list[Any]] = [list(p) for p in state["parts"]]
        tail_size = int(state["tail_size"])
        if sum(int(p[2]) for p in parts) + tail_size != offset:
            raise StorageError(f"upload {upload_id}: stored state does not match offset {offset}")
        mpu_key, mpu_id = state["mpu_key"], state["mpu_id"]
        part_size = self.part_size

        # One part's worth of memory, reused: the saved tail first, then the new bytes.
        buf = bytearray(max(part_size, tail_size))
        filled = 0
        if state["tail"] and tail_size:
            self._read_into(upload_id, state["tail"], memoryview(buf)[:tail_size])
            filled = tail_size

        def flush() -> None:
            nonlocal mpu_key, mpu_id, filled
            number = int(parts[-1][0]) + 1 if parts else 1
            if number > MAX_PARTS:
                raise StorageError(
                    f"upload {upload_id}: more than {MAX_PARTS} parts of {part_size} bytes"
                    " (raise HUB_S3_PART_SIZE for larger blobs)"
                )
            with _s3_errors(f"upload part {number} of {upload_id}"):
                if mpu_id is None:
                    mpu_key = self._key(f"uploads/{upload_id}/data-{secrets.token_hex(8)}")
                    mpu_id = self.client.create_multipart_upload(
                        Bucket=self.bucket, Key=mpu_key, ContentType="application/octet-stream"
                    )["UploadId"]
                # botocore sends a bytearray as it is (the stubs only say bytes).
                body = cast(bytes, buf) if filled == len(buf) else bytes(memoryview(buf)[:filled])
                etag = self.client.upload_part(
                    Bucket=self.bucket,
                    Key=mpu_key,
                    UploadId=mpu_id,
                    PartNumber=number,
                    Body=body,
                    ContentLength=filled,
                )["ETag"]
            parts.append([number, etag, filled])
            filled = 0

        if filled >= part_size:  # a tail left by a larger part_size setting
            flush()
        written = 0
        for chunk in chunks:
            view = memoryview(chunk).cast("B")
            while view:
                n = min(part_size - filled, len(view))
                buf[filled : filled + n] = view[:n]
                filled += n
                written += n
                view = view[n:]
                if filled == part_size:
                    flush()
        if not written:
            return state, 0

        tail_key = None
        if filled:
            end = offset + written
            # A fresh key each request: the saved state's tail is never overwritten.
            tail_key = self._key(f"uploads/{upload_id}/tail-{end}-{secrets.token_hex(8)}")
            del buf[filled:]  # shrink in place rather than copy
            with _s3_errors(f"store the tail of {upload_id}"):
                self.client.put_object(
                    Bucket=self.bucket,
                    Key=tail_key,
                    Body=cast(bytes, buf),
                    ContentLength=filled,
                    ContentType="application/octet-stream",
                )
        new_state = {
            "mpu_key": mpu_key,
            "mpu_id": mpu_id,
            "parts": parts,
            "tail": tail_key,
            "tail_size": filled,
        }
        return new_state, written

    def upload_read(self, upload_id: str, state: StorageState) -> Iterator[bytes]:
        # S3 cannot read the parts of an unfinished MPU. So when there are parts, complete it
        # (exactly what commit does next; commit then finds it completed) and read the result.
        # Limitation: after this, the session cannot take more data (NoSuchUpload on the next
        # part); Hub reads an upload only right before committing or discarding it.
        state = {**_empty_state(), **(state or {})}
        if state["parts"]:
            key = self._finalize(upload_id, state)
        elif state["tail"] and state["tail_size"]:
            key = state["tail"]
        else:
            return iter(())
        return self._get_chunks(key, what=f"read upload {upload_id}")

    def upload_commit(self, upload_id: str, state: StorageState, digest: str) -> None:
        state = {**_empty_state(), **(state or {})}
        target = self._key(blob_key(digest))
        if not self._exists(target):
            with _s3_errors(f"commit upload {upload_id} as {digest}"):
                if state["parts"]:
                    source = self._finalize(upload_id, state)
                    # Managed copy: one CopyObject up to 5 GB, a multipart copy beyond. The blob
                    # key appears only when the copy completes.
                    self.client.copy(
                        {"Bucket": self.bucket, "Key": source},
                        self.bucket,
                        target,
                        Config=self.copy_config,
                    )
                elif state["tail"] and state["tail_size"]:
                    self.client.copy_object(
                        Bucket=self.bucket,
                        Key=target,
                        CopySource={"Bucket": self.bucket, "Key": state["tail"]},
                        ContentType="application/octet-stream",
                        MetadataDirective="REPLACE",
                    )
                else:
                    self.client.put_object(
                        Bucket=self.bucket,
                        Key=target,
                        Body=b"",
                        ContentType="application/octet-stream",
                    )
        self._cleanup(upload_id)

    def upload_abort(self, upload_id: str, state: StorageState) -> None:
        state = {**_empty_state(), **(state or {})}
        if state["mpu_id"]:
            self._abort_mpu(state["mpu_key"], state["mpu_id"])
        self._cleanup(upload_id)

    def _finalize(self, upload_id: str, state: StorageState) -> str:
        """Complete the MPU with the tail as its last part; returns the completed object's key.

        Safe to call again for the same state: if the MPU is already completed (by upload_read,
        or by a commit that failed later), the object is checked to be the one this state
        describes (size and multipart ETag) and used as it is.
        """
        mpu_key, mpu_id = str(state["mpu_key"]), str(state["mpu_id"])
        parts = [list(p) for p in state["parts"]]
        tail_size = int(state["tail_size"])
        expected_size = sum(int(p[2]) for p in parts) + tail_size
        tail: bytearray | None = None
        etags = [str(p[1]) for p in parts]
        if state["tail"] and tail_size:
            tail = bytearray(tail_size)
            self._read_into(upload_id, state["tail"], tail)
            etags.append(hashlib.md5(tail, usedforsecurity=False).hexdigest())
        if self._completed(upload_id, mpu_key, expected_size, etags):
            return mpu_key
        try:
            if tail is not None:
                number = int(parts[-1][0]) + 1
                etag = self.client.upload_part(
                    Bucket=self.bucket,
                    Key=mpu_key,
                    UploadId=mpu_id,
                    PartNumber=number,
                    Body=cast(bytes, tail),
                    ContentLength=tail_size,
                )["ETag"]
                parts.append([number, etag, tail_size])
            del tail
            self.client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=mpu_key,
                UploadId=mpu_id,
                MultipartUpload={"Parts": [{"PartNumber": int(n), "ETag": e} for n, e, _ in parts]},
            )
        except _BOTO_ERRORS as exc:
            # Completed after all (a lost response, a concurrent reader)?
            if self._completed(upload_id, mpu_key, expected_size, etags):
                return mpu_key
            raise StorageError(f"S3: complete upload {upload_id}: {exc}") from exc
        return mpu_key

    def _completed(self, upload_id: str, key: str, size: int, etags: list[str]) -> bool:
        """Whether the MPU is already completed; StorageError if it was, with other data."""
        with _s3_errors(f"check upload {upload_id}"):
            try:
                head = self.client.head_object(Bucket=self.bucket, Key=key)
            except botocore.exceptions.ClientError as exc:
                if _not_found(exc):
                    return False
                raise
        if head["ContentLength"] != size or head["ETag"] != _multipart_etag(etags):
            raise StorageError(f"upload {upload_id}: completed data does not match its state")
        return True

    def _read_into(self, upload_id: str, key: str, buf: bytearray | memoryview) -> None:
        """Fill `buf` (exactly) with the object `key`: a tail, read back."""
        filled = 0
        for data in self._get_chunks(key, what=f"read the tail of {upload_id}"):
            if filled + len(data) > len(buf):
                raise StorageError(f"upload {upload_id}: tail object is larger than recorded")
            buf[filled : filled + len(data)] = data
            filled += len(data)
        if filled != len(buf):
            raise StorageError(f"upload {upload_id}: tail object is shorter than recorded")

    def _abort_mpu(self, key: str, mpu_id: str) -> None:
        try:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=mpu_id)
        except botocore.exceptions.ClientError as exc:
            if _error_code(exc) not in ("NoSuchUpload", "404", "NoSuchKey"):
                raise StorageError(f"S3: abort upload {key}: {exc}") from exc
        except botocore.exceptions.BotoCoreError as exc:
            raise StorageError(f"S3: abort upload {key}: {exc}") from exc

    def _cleanup(self, upload_id: str) -> None:
        """Remove everything under uploads/<id>/: tails, the completed MPU, abandoned MPUs."""
        prefix = self._upload_prefix(upload_id)
        with _s3_errors(f"clean up upload {upload_id}"):
            mpus = self.client.get_paginator("list_multipart_uploads")
            for mpu_page in mpus.paginate(Bucket=self.bucket, Prefix=prefix):
                for mpu in mpu_page.get("Uploads", []):
                    self._abort_mpu(mpu["Key"], mpu["UploadId"])
            objects = self.client.get_paginator("list_objects_v2")
            for page in objects.paginate(Bucket=self.bucket, Prefix=prefix):
                keys: list[Any] = [{"Key": o["Key"]} for o in page.get("Contents", [])]
                if keys:
                    result = self.client.delete_objects(
                        Bucket=self.bucket, Delete={"Objects": keys, "Quiet": True}
                    )
                    if result.get("Errors"):
                        raise StorageError(
                            f"S3: clean up upload {upload_id}: {json.dumps(result['Errors'])}"
                        )

    # --- blobs ------------------------------------------------------------------------------

    def _exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=key)
        except botocore.exceptions.ClientError as exc:
            if _not_found(exc):
                return False
            raise StorageError(f"S3: head {key}: {exc}") from exc
        except botocore.exceptions.BotoCoreError as exc:
            raise StorageError(f"S3: head {key}: {exc}") from exc
        return True

    def _get_chunks(self, key: str, *, what: str, byte_range: str | None = None) -> Iterator[bytes]:
        """Start the GET now (errors surface before the first byte) and stream the body."""
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if byte_range:
            kwargs["Range"] = byte_range
        with _s3_errors(what):
            try:
                body = self.client.get_object(**kwargs)["Body"]
            except botocore.exceptions.ClientError as exc:
                if _not_found(exc):
                    raise StorageError(f"S3: {what}: {key} is missing") from None
                raise
        return self._stream(body, what)

    @staticmethod
    def _stream(body: Any, what: str) -> Iterator[bytes]:
        try:
            with _s3_errors(what):
                yield from body.iter_chunks(READ_SIZE)
        finally:
            body.close()

    def blob_exists(self, digest: str) -> bool:
        return self._exists(self._key(blob_key(digest)))

    def blob_read(self, digest: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        byte_range = None
        if start or end is not None:
            byte_range = f"bytes={start}-{'' if end is None else end}"
        return self._get_chunks(
            self._key(blob_key(digest)), what=f"read blob {digest}", byte_range=byte_range
        )

    def blob_redirect_url(self, digest: str, *, media_type: str | None = None) -> str | None:
        if not self.redirect:
            return None
        params = {"Bucket": self.bucket, "Key": self._key(blob_key(digest))}
        if media_type:
            params["ResponseContentType"] = media_type
        with _s3_errors(f"presign {digest}"):
            return str(
                self.client.generate_presigned_url(
                    "get_object", Params=params, ExpiresIn=self.redirect_ttl
                )
            )

    def blob_delete(self, digest: str) -> None:
        with _s3_errors(f"delete blob {digest}"):
            self.client.delete_object(Bucket=self.bucket, Key=self._key(blob_key(digest)))

    def blobs_delete(self, digests: list[str]) -> None:
        for start in range(0, len(digests), 1000):  # DeleteObjects takes 1000 keys at most
            keys: list[Any] = [
                {"Key": self._key(blob_key(digest))} for digest in digests[start : start + 1000]
            ]
            with _s3_errors(f"delete {len(keys)} blobs"):
                result = self.client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": keys, "Quiet": True}
                )
            if result.get("Errors"):
                raise StorageError(f"S3: delete blobs: {json.dumps(result['Errors'][:10])}")

    def check(self) -> None:
        with _s3_errors(f"bucket {self.bucket}"):
            self.client.head_bucket(Bucket=self.bucket)

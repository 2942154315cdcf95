"""The blob store contract, run against every backend (filesystem, and S3 on moto)."""

from __future__ import annotations

import hashlib
import os
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from registry.storage.base import ObjectNotFound, Storage, StorageError, blob_key
from registry.storage.filesystem import FilesystemStorage

MiB = 1024 * 1024
PART = 5 * MiB


def _s3(moto_s3, bucket: str, **kwargs) -> Storage:
    from registry.storage.s3 import S3Storage

    options = {
        "endpoint_url": moto_s3.endpoint,
        "bucket": bucket,
        "region": "us-east-1",
        "access_key_id": "test",
        "secret_access_key": "test",
        "prefix": "",
        "redirect": False,
        "redirect_ttl": 600,
        "part_size": PART,
    }
    options.update(kwargs)
    return S3Storage(**options)


@pytest.fixture(params=["filesystem", pytest.param("s3", marks=pytest.mark.s3)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    if request.param == "s3":
        return _s3(request.getfixturevalue("moto_s3"), request.getfixturevalue("s3_bucket"))
    return FilesystemStorage(tmp_path / "store", fsync=False)


@pytest.fixture
def s3_store(moto_s3, s3_bucket: str) -> Storage:
    return _s3(moto_s3, s3_bucket)


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _read(store: Storage, digest: str, start: int = 0, end: int | None = None) -> bytes:
    return b"".join(store.blob_read(digest, start, end))


def _pieces(data: bytes, size: int) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


def _bucket_keys(store: Storage) -> list[str]:
    client = store.client  # type: ignore[attr-defined]
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=store.bucket)  # type: ignore[attr-defined]
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


def _open_mpus(store: Storage) -> list[str]:
    client = store.client  # type: ignore[attr-defined]
    return [u["Key"] for u in client.list_multipart_uploads(Bucket=store.bucket).get("Uploads", [])]  # type: ignore[attr-defined]


def _leftovers(store: Storage) -> list[str]:
    """Whatever uploads left behind in the store."""
    if isinstance(store, FilesystemStorage):
        return sorted(p.name for p in store.uploads.iterdir())
    return [k for k in _bucket_keys(store) if not k.startswith("blobs/")] + _open_mpus(store)


def _upload(store: Storage, requests: list[list[bytes]]) -> tuple[str, dict, int]:
    """Write each request's chunks in turn, saving the state after each, as Hub does."""
    upload_id = str(uuid.uuid4())
    state = store.upload_create(upload_id)
    offset = 0
    for chunks in requests:
        state, written = store.upload_write(upload_id, state, offset, iter(chunks))
        offset += written
    return upload_id, state, offset


class Boom(Exception):
    pass


def _failing(chunks: list[bytes]) -> Iterator[bytes]:
    yield from chunks
    raise Boom("client went away")


def test_it_writes_many_small_chunks(store: Storage) -> None:
    data = os.urandom(100 * 1024 * 130)
    upload_id, state, size = _upload(store, [list(_pieces(data, 100 * 1024))])
    assert size == len(data)
    store.upload_commit(upload_id, state, _digest(data))
    assert store.blob_exists(_digest(data))
    assert _read(store, _digest(data)) == data
    assert _leftovers(store) == []


def test_it_writes_many_small_requests(store: Storage) -> None:
    # oras-style: one 1 MiB chunk per request, so each request starts from the saved tail.
    data = os.urandom(12 * MiB + 12345)
    upload_id, state, size = _upload(store, [[c] for c in _pieces(data, MiB)])
    assert size == len(data)
    store.upload_commit(upload_id, state, _digest(data))
    assert _read(store, _digest(data)) == data
    assert _leftovers(store) == []


def test_it_writes_one_big_chunk(store: Storage) -> None:
    data = os.urandom(3 * PART + 7)
    upload_id, state, size = _upload(store, [[data]])
    assert size == len(data)
    store.upload_commit(upload_id, state, _digest(data))
    assert _read(store, _digest(data)) == data


def test_it_writes_exact_multiples_of_the_part_size(store: Storage) -> None:
    data = os.urandom(2 * PART)
    upload_id, state, _ = _upload(store, [[data[:PART]], [data[PART:]]])
    store.upload_commit(upload_id, state, _digest(data))
    assert _read(store, _digest(data)) == data


def test_it_writes_a_small_blob(store: Storage) -> None:
    data = b"hello, registry"
    upload_id, state, size = _upload(store, [[data[:5]], [data[5:]]])
    assert size == len(data)
    assert b"".join(store.upload_read(upload_id, state)) == data
    store.upload_commit(upload_id, state, _digest(data))
    assert _read(store, _digest(data)) == data
    assert _leftovers(store) == []


def test_it_writes_zero_bytes(store: Storage) -> None:
    upload_id, state, size = _upload(store, [[], [b""]])
    assert size == 0
    assert b"".join(store.upload_read(upload_id, state)) == b""
    store.upload_commit(upload_id, state, _digest(b""))
    assert store.blob_exists(_digest(b""))
    assert _read(store, _digest(b"")) == b""
    assert _leftovers(store) == []


def test_it_keeps_the_saved_state_valid_when_a_write_fails(store: Storage) -> None:
    first = os.urandom(PART + 300 * 1024)  # a part and a tail
    upload_id, saved, offset = _upload(store, [list(_pieces(first, 64 * 1024))])
    # A request that sends more than two parts' worth, then dies.
    junk = os.urandom(2 * PART + 100)
    with pytest.raises(Boom):
        store.upload_write(upload_id, saved, offset, _failing(list(_pieces(junk, MiB))))
    # The client resumes from the saved offset with different bytes.
    rest = os.urandom(2 * PART + 4321)
    state, written = store.upload_write(upload_id, saved, offset, iter(_pieces(rest, MiB)))
    assert written == len(rest)
    data = first + rest
    store.upload_commit(upload_id, state, _digest(data))
    assert _read(store, _digest(data)) == data
    assert _leftovers(store) == []


def test_it_keeps_the_saved_state_valid_when_the_first_write_fails(store: Storage) -> None:
    upload_id = str(uuid.uuid4())
    saved = store.upload_create(upload_id)
    with pytest.raises(Boom):
        store.upload_write(upload_id, saved, 0, _failing([os.urandom(PART + 1)]))
    data = os.urandom(PART + 2)
    state, _ = store.upload_write(upload_id, saved, 0, iter([data]))
    store.upload_commit(upload_id, state, _digest(data))
    assert _read(store, _digest(data)) == data
    assert _leftovers(store) == []  # the MPU the failed request began is gone too


def test_it_commits_twice_for_the_same_digest(store: Storage) -> None:
    data = os.urandom(PART + 10)
    for _ in range(2):
        upload_id, state, _ = _upload(store, [list(_pieces(data, MiB))])
        store.upload_commit(upload_id, state, _digest(data))
    assert _read(store, _digest(data)) == data
    assert _leftovers(store) == []


def test_it_aborts_leaving_nothing(store: Storage) -> None:
    data = os.urandom(2 * PART + 99)
    upload_id, state, offset = _upload(store, [[data[:MiB]], list(_pieces(data[MiB:], MiB))])
    with pytest.raises(Boom):
        store.upload_write(upload_id, state, offset, _failing([os.urandom(PART)]))
    store.upload_abort(upload_id, state)
    store.upload_abort(upload_id, state)  # no error the second time
    assert _leftovers(store) == []
    if not isinstance(store, FilesystemStorage):
        assert _bucket_keys(store) == []


def test_it_reads_ranges(store: Storage) -> None:
    data = os.urandom(3 * MiB + 5)
    upload_id, state, _ = _upload(store, [[data]])
    digest = _digest(data)
    store.upload_commit(upload_id, state, digest)
    assert _read(store, digest, 0, 0) == data[:1]
    assert _read(store, digest, 10, 19) == data[10:20]
    assert _read(store, digest, MiB - 3, 2 * MiB + 3) == data[MiB - 3 : 2 * MiB + 4]
    assert _read(store, digest, len(data) - 1) == data[-1:]
    assert _read(store, digest, 100) == data[100:]
    assert _read(store, digest, 0, len(data) - 1) == data
    assert all(len(c) <= MiB for c in store.blob_read(digest))


def test_it_deletes_blobs(store: Storage) -> None:
    data = b"to be deleted"
    upload_id, state, _ = _upload(store, [[data]])
    store.upload_commit(upload_id, state, _digest(data))
    assert store.blob_exists(_digest(data))
    store.blob_delete(_digest(data))
    assert not store.blob_exists(_digest(data))
    store.blob_delete(_digest(data))  # already gone: fine


def test_it_reads_back_an_upload_with_parts(store: Storage) -> None:
    data = os.urandom(2 * PART + 1000)
    upload_id, state, _ = _upload(store, [list(_pieces(data, MiB))])
    assert hashlib.sha512(b"".join(store.upload_read(upload_id, state))).digest() == (
        hashlib.sha512(data).digest()
    )
    assert b"".join(store.upload_read(upload_id, state)) == data  # and again
    store.upload_commit(upload_id, state, _digest(data))
    assert _read(store, _digest(data)) == data
    assert _leftovers(store) == []


def test_it_passes_its_check(store: Storage) -> None:
    store.check()


# --- S3 only ----------------------------------------------------------------------------------


@pytest.mark.s3
def test_it_redirects_to_a_presigned_url(moto_s3, s3_bucket: str) -> None:
    store = _s3(moto_s3, s3_bucket, redirect=True, redirect_ttl=60)
    data = os.urandom(PART + 3)
    upload_id, state, _ = _upload(store, [[data]])
    store.upload_commit(upload_id, state, _digest(data))
    url = store.blob_redirect_url(_digest(data))
    assert url is not None and "X-Amz-Expires=60" in url
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - loopback
        assert response.read() == data


@pytest.mark.s3
def test_it_does_not_redirect_unless_told(s3_store: Storage) -> None:
    assert s3_store.blob_redirect_url(_digest(b"x")) is None


@pytest.mark.s3
def test_it_keeps_keys_under_the_prefix(moto_s3, s3_bucket: str) -> None:
    store = _s3(moto_s3, s3_bucket, prefix="hub/data")
    data = os.urandom(PART + 3)
    upload_id, state, _ = _upload(store, [[data[:100]], [data[100:]]])
    assert all(k.startswith("hub/data/uploads/") for k in _bucket_keys(store))
    store.upload_commit(upload_id, state, _digest(data))
    assert _bucket_keys(store) == ["hub/data/" + blob_key(_digest(data))]
    assert _read(store, _digest(data)) == data


@pytest.mark.s3
def test_it_never_overwrites_the_saved_tail(s3_store: Storage) -> None:
    upload_id, saved, offset = _upload(s3_store, [[b"a" * 1000]])
    with pytest.raises(Boom):
        s3_store.upload_write(upload_id, saved, offset, _failing([b"b" * 10]))
    keys = _bucket_keys(s3_store)
    assert saved["tail"] in keys
    assert b"".join(s3_store._get_chunks(saved["tail"], what="t")) == b"a" * 1000  # type: ignore[attr-defined]


@pytest.mark.s3
def test_it_retries_a_commit_that_failed_after_completing(
    s3_store: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = os.urandom(PART + 12345)
    upload_id, state, _ = _upload(s3_store, [[data]])

    def broken_copy(*args, **kwargs):
        raise StorageError("copy failed")

    monkeypatch.setattr(s3_store.client, "copy", broken_copy)  # type: ignore[attr-defined]
    with pytest.raises(StorageError):
        s3_store.upload_commit(upload_id, state, _digest(data))
    assert not s3_store.blob_exists(_digest(data))
    monkeypatch.undo()
    s3_store.upload_commit(upload_id, state, _digest(data))
    assert _read(s3_store, _digest(data)) == data
    assert _leftovers(s3_store) == []


@pytest.mark.s3
def test_it_refuses_a_completed_upload_that_is_not_the_state(s3_store: Storage) -> None:
    upload_id, saved, offset = _upload(s3_store, [[os.urandom(PART + 10)]])
    one, _ = s3_store.upload_write(upload_id, saved, offset, iter([b"one"]))
    two, _ = s3_store.upload_write(upload_id, saved, offset, iter([b"two"]))
    b"".join(s3_store.upload_read(upload_id, one))  # completes the MPU with tail "one"
    with pytest.raises(StorageError):
        s3_store.upload_read(upload_id, two)


@pytest.mark.s3
def test_it_copies_in_parts_beyond_the_threshold(s3_store: Storage) -> None:
    from boto3.s3.transfer import TransferConfig

    s3_store.copy_config = TransferConfig(  # type: ignore[attr-defined]
        multipart_threshold=PART, multipart_chunksize=PART
    )
    data = os.urandom(2 * PART + 3)
    upload_id, state, _ = _upload(s3_store, [list(_pieces(data, MiB))])
    s3_store.upload_commit(upload_id, state, _digest(data))
    assert _read(s3_store, _digest(data)) == data


@pytest.mark.s3
def test_it_raises_storage_errors(moto_s3) -> None:
    store = _s3(moto_s3, "no-such-bucket")
    with pytest.raises(StorageError):
        store.check()
    with pytest.raises(StorageError):
        _read(store, _digest(b"x"))
    unreachable = _s3(moto_s3, "b", endpoint_url="http://127.0.0.1:9")
    unreachable.client.meta.config.retries = {"max_attempts": 1}  # type: ignore[attr-defined]
    with pytest.raises(StorageError):
        unreachable.check()


@pytest.mark.s3
def test_it_reports_a_missing_blob_as_a_storage_error(s3_store: Storage) -> None:
    with pytest.raises(StorageError):
        s3_store.blob_read(_digest(b"nope"))
    assert not s3_store.blob_exists(_digest(b"nope"))


@pytest.mark.s3
def test_it_continues_a_tail_left_by_a_larger_part_size(moto_s3, s3_bucket: str) -> None:
    big = _s3(moto_s3, s3_bucket, part_size=PART + MiB)
    first = os.urandom(PART + MiB // 2)  # a tail bigger than the smaller part size
    upload_id, state, offset = _upload(big, [[first]])
    assert state["parts"] == [] and state["tail_size"] == len(first)
    small = _s3(moto_s3, s3_bucket)
    rest = os.urandom(PART + 77)
    state, _ = small.upload_write(upload_id, state, offset, iter(_pieces(rest, MiB)))
    data = first + rest
    small.upload_commit(upload_id, state, _digest(data))
    assert _read(small, _digest(data)) == data


def test_it_builds_the_configured_store(storage_backend: str) -> None:
    from registry.storage import get_storage

    store = get_storage()
    assert store.name == storage_backend
    store.check()
    data = b"configured"
    upload_id, state, _ = _upload(store, [[data]])
    store.upload_commit(upload_id, state, _digest(data))
    assert _read(store, _digest(data)) == data


def test_it_keeps_named_objects_beside_the_blobs(store: Storage) -> None:
    store.object_put("audit-archive/org/acme/1.jsonl.gz", b"one")
    store.object_put("audit-archive/org/acme/1.jsonl.gz", b"two")  # replaced whole
    store.object_put("audit-archive/site/2.json", b"{}")
    store.object_put("elsewhere/x", b"x")
    assert store.object_get("audit-archive/org/acme/1.jsonl.gz") == b"two"
    assert store.object_list("audit-archive") == [
        "audit-archive/org/acme/1.jsonl.gz",
        "audit-archive/site/2.json",
    ]
    assert store.object_list("nothing-here") == []
    with pytest.raises(ObjectNotFound):
        store.object_get("audit-archive/missing")
    for name in ("../escape", "/etc/passwd", "a/../b", "", "a//b", ".hidden"):
        with pytest.raises(StorageError):
            store.object_put(name, b"x")


def test_it_writes_named_objects_from_a_stream_and_reads_them_back(store: Storage) -> None:
    # More than one multipart part on S3 (PART is its part size), in odd-sized chunks.
    data = os.urandom(PART + 12345)
    chunks = (data[i : i + 777_777] for i in range(0, len(data), 777_777))
    assert store.object_write("audit-export/1-a.jsonl", chunks) == len(data)
    assert b"".join(store.object_read("audit-export/1-a.jsonl")) == data
    assert store.object_get("audit-export/1-a.jsonl") == data
    store.object_delete("audit-export/1-a.jsonl")
    store.object_delete("audit-export/1-a.jsonl")  # gone already: no error
    with pytest.raises(ObjectNotFound):
        store.object_read("audit-export/1-a.jsonl")
    assert store.object_list("audit-export") == []


def test_it_keeps_no_part_of_an_object_whose_stream_failed(store: Storage) -> None:
    def failing() -> Iterator[bytes]:
        yield b"x" * 1000
        raise RuntimeError("the export failed")

    with pytest.raises(RuntimeError):
        store.object_write("audit-export/2-b.csv", failing())
    assert store.object_list("audit-export") == []


@pytest.mark.s3
def test_it_presigns_named_objects_for_download(moto_s3, s3_bucket: str) -> None:
    store = _s3(moto_s3, s3_bucket, redirect=True)
    store.object_put("audit-export/3-c.csv", b"a,b\n")
    url = store.object_redirect_url(
        "audit-export/3-c.csv", ttl=30, filename="x.csv", content_type="text/csv"
    )
    assert url is not None and "X-Amz-Expires=30" in url
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - loopback
        assert response.read() == b"a,b\n"
        assert response.headers["Content-Disposition"] == 'attachment; filename="x.csv"'
    assert (
        _s3(moto_s3, s3_bucket).object_redirect_url(
            "audit-export/3-c.csv", ttl=30, filename="x.csv", content_type="text/csv"
        )
        is None
    )

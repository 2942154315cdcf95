"""Blob uploads: monolithic, POST then PUT, chunked, status, cancel, mount, expiry, limits."""

from __future__ import annotations

import io
import os
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from registry.models import Blob, RepositoryBlob, Upload
from registry.services.uploads import uploads_expire
from registry.storage import StorageError, get_storage
from tests.conftest import SpecRobot
from tests.helpers import (
    ChunkedClient,
    assert_error,
    body,
    digest_of,
    patch_chunk,
    push_blob,
    start_upload,
    with_query,
)

pytestmark = pytest.mark.django_db

NAME = "library/uploads"
DATA = os.urandom(3000)


def _stored_files(settings) -> list[Path]:
    root = Path(settings.HUB_STORAGE_DIR)
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def _get(client, name: str, digest: str) -> bytes:
    response = client.get(f"/v2/{name}/blobs/{digest}")
    assert response.status_code == 200, body(response)
    return body(response)


def test_it_takes_a_monolithic_post(client, storage_backend: str) -> None:
    digest = digest_of(DATA)
    response = client.post(
        f"/v2/{NAME}/blobs/uploads/?digest={digest}", DATA, content_type="application/octet-stream"
    )
    assert response.status_code == 201
    assert response["Location"] == f"/v2/{NAME}/blobs/{digest}"
    assert response["Docker-Content-Digest"] == digest
    assert _get(client, NAME, digest) == DATA
    assert not Upload.objects.exists()


def test_it_takes_post_then_put_with_the_body(client, storage_backend: str) -> None:
    response = client.post(f"/v2/{NAME}/blobs/uploads/")
    assert response.status_code == 202
    location = response["Location"]
    assert location.startswith(f"/v2/{NAME}/blobs/uploads/")
    assert response["Range"] == "0-0"
    assert response["Docker-Upload-UUID"] in location
    digest = digest_of(DATA)
    response = client.put(
        with_query(location, digest=digest), DATA, content_type="application/octet-stream"
    )
    assert response.status_code == 201
    assert response["Location"] == f"/v2/{NAME}/blobs/{digest}"
    assert response["Docker-Content-Digest"] == digest
    assert _get(client, NAME, digest) == DATA


@pytest.mark.parametrize("prefix", ["", "bytes=", "bytes "])
def test_it_takes_chunks_with_content_range(client, storage_backend: str, prefix: str) -> None:
    location = start_upload(client, NAME)
    offset = 0
    for piece in (DATA[:1000], DATA[1000:2000]):
        end = offset + len(piece) - 1
        response = patch_chunk(client, location, piece, f"{prefix}{offset}-{end}")
        assert response.status_code == 202, body(response)
        assert response["Range"] == f"0-{end}"
        assert response["Location"] == location
        location = response["Location"]
        offset = end + 1
    digest = digest_of(DATA)
    response = client.put(
        with_query(location, digest=digest),
        DATA[2000:],
        content_type="application/octet-stream",
        headers={"Content-Range": f"{prefix}2000-{len(DATA) - 1}"},
    )
    assert response.status_code == 201, body(response)
    assert _get(client, NAME, digest) == DATA


def test_it_takes_chunks_without_content_range_and_an_empty_closing_put(
    client, storage_backend: str
) -> None:
    location = start_upload(client, NAME)
    for piece in (DATA[:10], DATA[10:]):
        response = patch_chunk(client, location, piece)
        assert response.status_code == 202
    assert response["Range"] == f"0-{len(DATA) - 1}"
    digest = digest_of(DATA)
    response = client.put(with_query(location, digest=digest))
    assert response.status_code == 201
    assert _get(client, NAME, digest) == DATA


@pytest.mark.parametrize("content_range", ["5-9", "0-9"])
def test_it_answers_an_out_of_order_or_repeated_chunk_with_416(
    client, storage_backend: str, content_range: str
) -> None:
    location = start_upload(client, NAME)
    assert patch_chunk(client, location, DATA[:10], "0-9").status_code == 202
    response = patch_chunk(client, location, DATA[:5], content_range)
    assert_error(response, 416, "BLOB_UPLOAD_INVALID")
    assert response["Range"] == "0-9"
    assert response["Location"] == location
    # The session is still usable from where it was.
    status = client.get(location)
    assert status.status_code == 204
    assert status["Range"] == "0-9"
    assert patch_chunk(client, location, DATA[10:], f"10-{len(DATA) - 1}").status_code == 202
    assert client.put(with_query(location, digest=digest_of(DATA))).status_code == 201


def test_it_answers_a_first_chunk_not_at_zero_with_416(client) -> None:
    location = start_upload(client, NAME)
    response = patch_chunk(client, location, b"abc", "1-3")
    assert_error(response, 416)
    assert response["Range"] == "0-0"


@pytest.mark.parametrize("content_range", ["garbage", "9-5", "-5", "bytes=a-b"])
def test_it_answers_an_invalid_content_range_with_416(client, content_range: str) -> None:
    location = start_upload(client, NAME)
    assert_error(patch_chunk(client, location, b"abc", content_range), 416)


def test_it_refuses_content_length_that_does_not_match_content_range(client) -> None:
    location = start_upload(client, NAME)
    assert_error(patch_chunk(client, location, b"abcd", "0-9"), 400, "SIZE_INVALID")


def test_it_reports_upload_status_with_204_range_and_location(client, storage_backend: str) -> None:
    location = start_upload(client, NAME)
    response = client.get(location)
    assert response.status_code == 204
    assert response["Range"] == "0-0"
    assert response["Location"] == location
    patch_chunk(client, location, DATA[:100], "0-99")
    response = client.get(location)
    assert response.status_code == 204
    assert response["Range"] == "0-99"
    assert response["Location"] == location


def test_it_cancels_an_upload_then_answers_upload_unknown(
    client, settings, storage_backend: str
) -> None:
    location = start_upload(client, NAME)
    patch_chunk(client, location, DATA[:100], "0-99")
    response = client.delete(location)
    assert response.status_code == 204
    assert not Upload.objects.exists()
    assert_error(client.get(location), 404, "BLOB_UPLOAD_UNKNOWN")
    assert_error(patch_chunk(client, location, b"x"), 404, "BLOB_UPLOAD_UNKNOWN")
    assert_error(
        client.put(with_query(location, digest=digest_of(b""))), 404, "BLOB_UPLOAD_UNKNOWN"
    )
    assert_error(client.delete(location), 404, "BLOB_UPLOAD_UNKNOWN")
    if storage_backend == "filesystem":
        assert _stored_files(settings) == []


def test_it_answers_an_unknown_or_malformed_upload_id(client) -> None:
    start_upload(client, NAME)
    assert_error(
        client.get(f"/v2/{NAME}/blobs/uploads/00000000-0000-0000-0000-000000000000"),
        404,
        "BLOB_UPLOAD_UNKNOWN",
    )
    assert_error(client.get(f"/v2/{NAME}/blobs/uploads/not-a-uuid"), 404, "BLOB_UPLOAD_UNKNOWN")
    assert_error(client.get("/v2/nobody/blobs/uploads/not-a-uuid"), 404, "BLOB_UPLOAD_UNKNOWN")


def test_it_answers_an_upload_id_used_on_another_repository(client) -> None:
    location = start_upload(client, NAME)
    upload_id = location.rsplit("/", 1)[1]
    start_upload(client, "library/other")
    assert_error(
        client.get(f"/v2/library/other/blobs/uploads/{upload_id}"), 404, "BLOB_UPLOAD_UNKNOWN"
    )
    response = patch_chunk(client, f"/v2/library/other/blobs/uploads/{upload_id}", b"x")
    assert_error(response, 404, "BLOB_UPLOAD_UNKNOWN")
    assert client.get(location).status_code == 204


def test_it_mounts_a_blob_from_another_repository(client, storage_backend: str) -> None:
    digest = push_blob(client, "library/source", DATA)
    response = client.post(f"/v2/{NAME}/blobs/uploads/?mount={digest}&from=library/source")
    assert response.status_code == 201
    assert response["Location"] == f"/v2/{NAME}/blobs/{digest}"
    assert response["Docker-Content-Digest"] == digest
    assert _get(client, NAME, digest) == DATA
    assert not Upload.objects.exists()


@pytest.mark.parametrize(
    "query",
    [
        "mount={digest}&from=nowhere/repo",  # no such repository
        "mount={missing}&from=library/source",  # not in that repository
        "mount={digest}&from=library/other",  # in the registry, not in `from`
    ],
)
def test_it_falls_back_to_a_session_when_it_cannot_mount(client, query: str) -> None:
    digest = push_blob(client, "library/source", b"only in source")
    push_blob(client, "library/third", b"third")
    client.post("/v2/library/other/blobs/uploads/")
    missing = digest_of(b"missing")
    response = client.post(
        f"/v2/{NAME}/blobs/uploads/?" + query.format(digest=digest, missing=missing)
    )
    assert response.status_code == 202
    location = response["Location"]
    assert location.startswith(f"/v2/{NAME}/blobs/uploads/")
    assert response["Range"] == "0-0"
    assert client.get(location).status_code == 204
    assert client.head(f"/v2/{NAME}/blobs/{digest}").status_code == 404


def test_it_takes_a_zero_length_blob(client, storage_backend: str) -> None:
    digest = push_blob(client, NAME, b"")
    response = client.head(f"/v2/{NAME}/blobs/{digest}")
    assert response.status_code == 200
    assert response["Content-Length"] == "0"
    assert _get(client, NAME, digest) == b""
    location = start_upload(client, "library/other")
    assert client.put(with_query(location, digest=digest)).status_code == 201


@pytest.mark.parametrize("flow", ["monolithic", "post-put", "chunked"])
def test_it_refuses_a_wrong_digest_and_keeps_nothing(
    client, settings, storage_backend: str, flow: str
) -> None:
    wrong = digest_of(b"not the data")
    if flow == "monolithic":
        response = client.post(
            f"/v2/{NAME}/blobs/uploads/?digest={wrong}",
            DATA,
            content_type="application/octet-stream",
        )
    else:
        location = start_upload(client, NAME)
        if flow == "chunked":
            patch_chunk(client, location, DATA, f"0-{len(DATA) - 1}")
            response = client.put(with_query(location, digest=wrong))
        else:
            response = client.put(
                with_query(location, digest=wrong), DATA, content_type="application/octet-stream"
            )
        assert_error(client.get(location), 404, "BLOB_UPLOAD_UNKNOWN")
    assert_error(response, 400, "DIGEST_INVALID")
    assert not Blob.objects.exists()
    assert not RepositoryBlob.objects.exists()
    assert not Upload.objects.exists()
    if storage_backend == "filesystem":
        assert _stored_files(settings) == []
    assert_error(client.get(f"/v2/{NAME}/blobs/{digest_of(DATA)}"), 404, "BLOB_UNKNOWN")


def test_it_refuses_put_without_a_digest(client) -> None:
    location = start_upload(client, NAME)
    assert_error(
        client.put(location, DATA, content_type="application/octet-stream"), 400, "DIGEST_INVALID"
    )


@pytest.mark.parametrize("digest", ["sha256:abc", "nonsense", f"md5:{'0' * 32}"])
def test_it_refuses_an_invalid_digest_parameter(client, digest: str) -> None:
    response = client.post(
        f"/v2/{NAME}/blobs/uploads/?digest={digest}", DATA, content_type="application/octet-stream"
    )
    assert_error(response, 400, "DIGEST_INVALID")
    location = start_upload(client, NAME)
    assert_error(client.put(with_query(location, digest=digest)), 400, "DIGEST_INVALID")


@pytest.mark.parametrize("flow", ["monolithic", "chunked"])
def test_it_takes_sha512_digests(client, storage_backend: str, flow: str) -> None:
    digest = digest_of(DATA, "sha512")
    if flow == "monolithic":
        response = client.post(
            f"/v2/{NAME}/blobs/uploads/?digest={digest}",
            DATA,
            content_type="application/octet-stream",
        )
    else:
        location = start_upload(client, NAME)
        patch_chunk(client, location, DATA[:1500], "0-1499")
        patch_chunk(client, location, DATA[1500:], f"1500-{len(DATA) - 1}")
        response = client.put(with_query(location, digest=digest))
    assert response.status_code == 201, body(response)
    assert response["Docker-Content-Digest"] == digest
    assert _get(client, NAME, digest) == DATA


def test_it_forgets_an_expired_session(client, settings, storage_backend: str) -> None:
    settings.HUB_UPLOAD_IDLE_TIMEOUT = 5
    location = start_upload(client, NAME)
    patch_chunk(client, location, DATA[:10], "0-9")
    Upload.objects.update(updated_at=timezone.now() - timedelta(seconds=60))
    assert_error(client.get(location), 404, "BLOB_UPLOAD_UNKNOWN")
    assert not Upload.objects.exists()
    assert_error(patch_chunk(client, location, DATA[10:20], "10-19"), 404, "BLOB_UPLOAD_UNKNOWN")
    if storage_backend == "filesystem":
        assert _stored_files(settings) == []


def test_it_keeps_an_expired_session_row_until_its_data_is_gone(
    client, settings, monkeypatch
) -> None:
    # Deleting the row first would leave data in the store that no row (and no cleanup
    # round) can find again when removing the data fails.
    settings.HUB_UPLOAD_IDLE_TIMEOUT = 5
    location = start_upload(client, NAME)
    patch_chunk(client, location, DATA[:10], "0-9")
    Upload.objects.update(updated_at=timezone.now() - timedelta(seconds=60))

    def unreachable(*args: object) -> None:
        raise StorageError("store unreachable")

    monkeypatch.setattr(get_storage(), "upload_abort", unreachable)
    assert_error(client.get(location), 404, "BLOB_UPLOAD_UNKNOWN")
    assert Upload.objects.count() == 1
    assert _stored_files(settings) != []

    monkeypatch.undo()
    Upload.objects.update(lease_until=timezone.now() - timedelta(seconds=1))
    assert uploads_expire() == 1
    assert not Upload.objects.exists()
    assert _stored_files(settings) == []


def test_it_keeps_a_session_that_is_used(client, settings) -> None:
    settings.HUB_UPLOAD_IDLE_TIMEOUT = 5
    location = start_upload(client, NAME)
    Upload.objects.update(updated_at=timezone.now() - timedelta(seconds=4))
    assert patch_chunk(client, location, DATA[:10], "0-9").status_code == 202
    Upload.objects.update(updated_at=timezone.now() - timedelta(seconds=4))
    assert client.put(with_query(location, digest=digest_of(DATA[:10]))).status_code == 201


def test_it_refuses_too_many_open_sessions(client, settings) -> None:
    settings.HUB_UPLOADS_PER_REPOSITORY = 3
    for _ in range(3):
        start_upload(client, NAME)
    response = client.post(f"/v2/{NAME}/blobs/uploads/")
    assert_error(response, 429, "TOOMANYREQUESTS")
    # The limit is per repository.
    start_upload(client, "library/other")


@pytest.mark.parametrize("piece", [1, 7, 4096])
def test_it_reads_a_chunked_body_to_its_end(
    storage_backend: str, piece: int, spec_robot: SpecRobot
) -> None:
    client = ChunkedClient(**spec_robot.basic)
    location = start_upload(client, NAME)
    response, stream = client.send_chunked("PATCH", location, DATA[:2000], piece=piece)
    assert response.status_code == 202, body(response)
    assert response["Range"] == "0-1999"
    assert stream.reads >= 2000 // piece
    digest = digest_of(DATA)
    response, _ = client.send_chunked(
        "PUT", with_query(location, digest=digest), DATA[2000:], piece
    )
    assert response.status_code == 201, body(response)
    assert _get(client, NAME, digest) == DATA


def test_it_reads_a_chunked_monolithic_post(storage_backend: str, spec_robot: SpecRobot) -> None:
    client = ChunkedClient(**spec_robot.basic)
    digest = digest_of(DATA)
    response, _ = client.send_chunked("POST", f"/v2/{NAME}/blobs/uploads/?digest={digest}", DATA)
    assert response.status_code == 201, body(response)
    assert _get(client, NAME, digest) == DATA


def test_it_refuses_a_body_shorter_than_its_content_length(client) -> None:
    location = start_upload(client, NAME)
    response = client.generic(
        "PATCH",
        location,
        b"",
        content_type="application/octet-stream",
        CONTENT_LENGTH="10",
        **{"wsgi.input": io.BytesIO(b"abc")},
    )
    assert_error(response, 400, "SIZE_INVALID")


@pytest.mark.parametrize("length", ["abc", "-1"])
def test_it_refuses_an_invalid_content_length(client, length: str) -> None:
    location = start_upload(client, NAME)
    response = client.generic(
        "PATCH", location, b"", content_type="application/octet-stream", CONTENT_LENGTH=length
    )
    assert_error(response, 400, "SIZE_INVALID")


def test_it_answers_a_full_disk_with_a_spec_error_and_keeps_the_session(
    client, monkeypatch
) -> None:
    import errno
    import os as os_module

    from registry.storage import filesystem

    location = start_upload(client, NAME)
    assert patch_chunk(client, location, DATA[:1000], "0-999").status_code == 202

    def full(fd: int, data: object) -> int:
        raise OSError(errno.ENOSPC, os_module.strerror(errno.ENOSPC))

    monkeypatch.setattr(filesystem, "_write_all", full)
    response = patch_chunk(client, location, DATA[1000:3000], "1000-2999")
    error = assert_error(response, 503, "UNSUPPORTED")
    assert "No space left" in error["message"]
    monkeypatch.undo()
    # Nothing half-written counts: the session goes on from where it was.
    assert client.get(location)["Range"] == "0-999"
    assert patch_chunk(client, location, DATA[1000:], f"1000-{len(DATA) - 1}").status_code == 202
    digest = digest_of(DATA)
    assert client.put(with_query(location, digest=digest)).status_code == 201


def test_it_makes_the_blob_durable_before_the_publishing_transaction(
    client, settings, monkeypatch
) -> None:
    # On SQLite the publishing transaction holds the database's one write lock: an fsync of a
    # large layer inside it would stop every other writer for as long as the disk takes.
    from django.db import connection

    import registry.storage.filesystem as filesystem

    settings.HUB_FSYNC = True
    outer = len(connection.atomic_blocks)
    synced: list[tuple[str, int]] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        kind = "dir" if os.path.isdir(f"/proc/self/fd/{fd}") else "file"
        synced.append((kind, len(connection.atomic_blocks) - outer))
        real_fsync(fd)

    monkeypatch.setattr(filesystem.os, "fsync", fsync)
    digest = digest_of(DATA)
    response = client.post(
        f"/v2/{NAME}/blobs/uploads/?digest={digest}", DATA, content_type="application/octet-stream"
    )
    assert response.status_code == 201
    file_syncs = [depth for kind, depth in synced if kind == "file"]
    assert file_syncs, synced
    assert file_syncs[0] == 0  # the first (the one that writes back the pages) is outside

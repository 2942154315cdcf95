"""GET, HEAD and DELETE of blobs, and Range requests."""

from __future__ import annotations

import pytest

from tests.helpers import assert_error, body, digest_of, push_blob

pytestmark = pytest.mark.django_db

DATA = bytes(range(256)) * 4  # 1024 bytes


@pytest.fixture
def pushed(client, storage_backend: str) -> str:
    return push_blob(client, "library/blobs", DATA)


def test_it_serves_a_blob_with_length_and_digest(client, pushed: str) -> None:
    response = client.get(f"/v2/library/blobs/blobs/{pushed}")
    assert response.status_code == 200
    assert response["Content-Length"] == str(len(DATA))
    assert response["Docker-Content-Digest"] == pushed
    assert body(response) == DATA


def test_it_answers_head_of_a_blob_without_a_body(client, pushed: str) -> None:
    response = client.head(f"/v2/library/blobs/blobs/{pushed}")
    assert response.status_code == 200
    assert response["Content-Length"] == str(len(DATA))
    assert response["Docker-Content-Digest"] == pushed
    assert body(response) == b""


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=0-9", 0, 9),
        ("bytes=100-", 100, 1023),
        ("bytes=-24", 1000, 1023),
        ("bytes=1000-5000", 1000, 1023),
        ("bytes=1023-1023", 1023, 1023),
    ],
)
def test_it_answers_a_range_with_206(
    client, pushed: str, header: str, start: int, end: int
) -> None:
    response = client.get(f"/v2/library/blobs/blobs/{pushed}", headers={"Range": header})
    assert response.status_code == 206
    assert response["Content-Range"] == f"bytes {start}-{end}/{len(DATA)}"
    assert response["Content-Length"] == str(end - start + 1)
    assert body(response) == DATA[start : end + 1]


def test_it_answers_the_whole_range_with_200(client, pushed: str) -> None:
    response = client.get(f"/v2/library/blobs/blobs/{pushed}", headers={"Range": "bytes=0-"})
    assert response.status_code == 200
    assert body(response) == DATA


@pytest.mark.parametrize("header", ["bytes=1024-", "bytes=5000-6000", "bytes=-0"])
def test_it_answers_an_unsatisfiable_range_with_416(client, pushed: str, header: str) -> None:
    response = client.get(f"/v2/library/blobs/blobs/{pushed}", headers={"Range": header})
    assert_error(response, 416)
    assert response["Content-Range"] == f"bytes */{len(DATA)}"


@pytest.mark.parametrize("header", ["items=0-5", "bytes=5-2", "bytes=a-b", "bytes=0-1,4-5"])
def test_it_ignores_a_range_it_does_not_understand(client, pushed: str, header: str) -> None:
    response = client.get(f"/v2/library/blobs/blobs/{pushed}", headers={"Range": header})
    assert response.status_code == 200
    assert body(response) == DATA


def test_it_answers_an_unknown_blob_with_blob_unknown(client, pushed: str) -> None:
    other = digest_of(b"never pushed")
    assert_error(client.get(f"/v2/library/blobs/blobs/{other}"), 404, "BLOB_UNKNOWN")
    response = client.head(f"/v2/library/blobs/blobs/{other}")
    assert response.status_code == 404
    assert body(response) == b""


def test_it_refuses_an_invalid_digest(client, pushed: str) -> None:
    assert_error(client.get("/v2/library/blobs/blobs/sha256:xyz"), 400, "DIGEST_INVALID")
    assert_error(client.get(f"/v2/library/blobs/blobs/md5:{'0' * 32}"), 400, "DIGEST_INVALID")


def test_it_serves_a_blob_only_through_repositories_that_link_it(client, pushed: str) -> None:
    push_blob(client, "library/other", b"something else")
    assert_error(client.get(f"/v2/library/other/blobs/{pushed}"), 404, "BLOB_UNKNOWN")
    assert client.head(f"/v2/library/other/blobs/{pushed}").status_code == 404
    assert_error(client.get(f"/v2/nobody/blobs/{pushed}"), 404, "BLOB_UNKNOWN")


def test_it_deletes_a_blob_with_202_then_answers_blob_unknown(client, pushed: str) -> None:
    response = client.delete(f"/v2/library/blobs/blobs/{pushed}")
    assert response.status_code == 202
    assert response["Docker-Content-Digest"] == pushed
    assert_error(client.get(f"/v2/library/blobs/blobs/{pushed}"), 404, "BLOB_UNKNOWN")
    assert client.head(f"/v2/library/blobs/blobs/{pushed}").status_code == 404
    assert_error(client.delete(f"/v2/library/blobs/blobs/{pushed}"), 404, "BLOB_UNKNOWN")


def test_it_deletes_the_link_of_one_repository_only(client, pushed: str) -> None:
    push_blob(client, "library/other", DATA)
    assert client.delete(f"/v2/library/blobs/blobs/{pushed}").status_code == 202
    response = client.get(f"/v2/library/other/blobs/{pushed}")
    assert response.status_code == 200
    assert body(response) == DATA


def test_it_answers_delete_in_an_unknown_repository_with_404(client) -> None:
    response = client.delete(f"/v2/nobody/blobs/{digest_of(b'x')}")
    assert_error(response, 404)


def test_it_serves_sha512_blobs(client, storage_backend: str) -> None:
    digest = push_blob(client, "library/blobs", DATA, algorithm="sha512")
    assert digest.startswith("sha512:")
    response = client.get(f"/v2/library/blobs/blobs/{digest}")
    assert response.status_code == 200
    assert response["Docker-Content-Digest"] == digest
    assert body(response) == DATA


def test_it_refuses_put_and_patch_on_a_blob(client, pushed: str) -> None:
    response = client.put(f"/v2/library/blobs/blobs/{pushed}", b"x")
    assert_error(response, 405)

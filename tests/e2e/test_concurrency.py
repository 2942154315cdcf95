"""Many clients at once against real `hub serve` processes, on SQLite and on PostgreSQL.

Each database gets one node (several gunicorn workers x threads, so requests of one
test land on different processes); every test ends by reading the node's log for
lock errors, tracebacks and 5xx answers.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
import requests

from tests.support.databases import fresh_database, postgres_base_url
from tests.support.nodes import (
    NODE_ENV,
    assert_clean_log,
    query,
    reap_stopped,
    run_together,
    stop_soon,
    store_files,
    wait_for_lease,
)
from tests.support.ocipush import Client, Image, error_codes, sha256
from tests.support.servers import HubProcess, start_hub

pytestmark = pytest.mark.e2e

CLIENTS = 16
MiB = 1024 * 1024
# Several processes, each with threads: 16 clients hit 3 processes at once.
SERVE_ARGS = ["--workers", "3", "--threads", "8"]


@pytest.fixture(scope="session", autouse=True)
def _reap() -> Iterator[None]:
    """Nodes shut down in the background while other tests run; wait for them at the end."""
    yield
    reap_stopped()


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def node(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """A node on the embedded default (no DATABASE_URL at all) or on a fresh PostgreSQL db."""
    if request.param == "postgres" and postgres_base_url() is None:
        pytest.skip("PostgreSQL pass: set DATABASE_URL=postgres://... to run it")
    data_dir = tmp_path_factory.mktemp(f"conc-{request.param}")
    with ExitStack() as stack:
        if request.param == "postgres":
            db_env = stack.enter_context(fresh_database(data_dir))
        else:
            db_env = {"DATABASE_URL": ""}  # empty is unset: the embedded SQLite
        hub = start_hub(data_dir, env={**NODE_ENV, **db_env}, args=SERVE_ARGS)
        stack.callback(stop_soon, hub)
        yield hub


@pytest.fixture
def clean_node(node: HubProcess) -> Iterator[HubProcess]:
    yield node
    assert_clean_log(node)
    leftovers = store_files(node.data_dir, "uploads")
    assert not leftovers, f"upload data left behind: {leftovers}"
    assert query(node.env, node.data_dir, "SELECT count(*) FROM registry_upload") == [(0,)]


def _client(node: HubProcess) -> Client:
    return Client(node.url)


def _blob_rows(node: HubProcess, digest: str) -> int:
    rows = query(
        node.env, node.data_dir, "SELECT count(*) FROM registry_blob WHERE digest = %s", digest
    )
    return int(rows[0][0])


def _blob_files(node: HubProcess, digest: str) -> list[Path]:
    hex_ = digest.split(":", 1)[1]
    return [p for p in store_files(node.data_dir) if p.name == hex_]


# --- (a) the same blob from 16 clients -------------------------------------------------------


@pytest.mark.parametrize("mode", ["monolithic", "chunked"])
def test_same_blob_from_many_clients(clean_node: HubProcess, mode: str) -> None:
    data = os.urandom(3 * MiB + 123)
    digest = sha256(data)
    repos = [f"same/{mode}-{i % 4}" for i in range(CLIENTS)]  # 4 clients per repository

    def push(i: int) -> str:
        client = _client(clean_node)
        if mode == "monolithic":
            return client.push_blob_monolithic(repos[i], data)
        return client.push_blob_chunked(repos[i], data, chunk_size=MiB)

    assert run_together(push, CLIENTS) == [digest] * CLIENTS
    assert _blob_rows(clean_node, digest) == 1
    files = _blob_files(clean_node, digest)
    assert len(files) == 1 and files[0].read_bytes() == data
    for repo in sorted(set(repos)):
        assert _client(clean_node).get_blob(repo, digest) == data
    links = query(
        clean_node.env,
        clean_node.data_dir,
        "SELECT count(*) FROM registry_repositoryblob rb JOIN registry_blob b ON b.id = rb.blob_id"
        " WHERE b.digest = %s",
        digest,
    )
    assert links == [(4,)]


# --- (b) one tag, 16 manifests ---------------------------------------------------------------


def test_same_tag_different_manifests(clean_node: HubProcess) -> None:
    repo = "same/tag"
    shared_layer = os.urandom(256 * 1024)
    images = [Image.of([shared_layer], label=f"client-{i}") for i in range(CLIENTS)]

    # Blobs first (concurrently too), then all manifest PUTs released at once.
    run_together(lambda i: [_client(clean_node).push_blob_monolithic(repo, b)
                            for b in images[i].blobs.values()], CLIENTS)  # fmt: skip
    digests = run_together(
        lambda i: _client(clean_node).put_manifest(repo, "latest", images[i].manifest), CLIENTS
    )
    assert sorted(digests) == sorted(image.digest for image in images)

    by_digest = {image.digest: image for image in images}
    client = _client(clean_node)
    body, digest, media_type = client.get_manifest(repo, "latest")
    assert sha256(body) == digest and digest in by_digest
    assert body == by_digest[digest].manifest
    head = client.http.head(client.url(f"/v2/{repo}/manifests/latest"), timeout=30)
    assert head.headers["Docker-Content-Digest"] == digest
    assert int(head.headers["Content-Length"]) == len(body)
    tags = client.http.get(client.url(f"/v2/{repo}/tags/list"), timeout=30).json()
    assert tags["tags"] == ["latest"]
    # Every manifest stays reachable by digest, pulls back byte for byte.
    for image in images:
        pulled = client.pull_image(repo, image.digest)
        assert pulled.manifest == image.manifest and pulled.config == image.config
    rows = query(
        clean_node.env,
        clean_node.data_dir,
        "SELECT count(*) FROM registry_tag t JOIN registry_repository r ON r.id = t.repository_id"
        " WHERE r.name = %s",
        repo,
    )
    assert rows == [(1,)]


def test_same_image_same_tag_from_many_clients(clean_node: HubProcess) -> None:
    repo = "same/image"
    image = Image.random(MiB, 64 * 1024, label="one")
    digests = run_together(
        lambda i: _client(clean_node).push_image(repo, "v1", image, chunk_size=512 * 1024),
        CLIENTS,
    )
    assert digests == [image.digest] * CLIENTS
    pulled = _client(clean_node).pull_image(repo, "v1")
    assert pulled.manifest == image.manifest and pulled.layers == image.layers
    rows = query(
        clean_node.env,
        clean_node.data_dir,
        "SELECT count(*) FROM registry_manifest m JOIN registry_repository r"
        " ON r.id = m.repository_id WHERE r.name = %s",
        repo,
    )
    assert rows == [(1,)]


# --- (c) 16 different images -----------------------------------------------------------------


def test_different_images_in_parallel(clean_node: HubProcess) -> None:
    images = [Image.random(64 * 1024, 1536 * 1024, label=f"img-{i}") for i in range(CLIENTS)]

    def push(i: int) -> str:
        return _client(clean_node).push_image(f"para/img-{i}", "v1", images[i], chunk_size=MiB)

    assert run_together(push, CLIENTS) == [image.digest for image in images]

    def pull(i: int) -> Image:
        return _client(clean_node).pull_image(f"para/img-{i}", "v1")

    for image, pulled in zip(images, run_together(pull, CLIENTS), strict=True):
        assert pulled.manifest == image.manifest
        assert pulled.config == image.config
        assert pulled.layers == image.layers
    catalog = _client(clean_node).http.get(clean_node.url + "/v2/_catalog", timeout=30).json()
    assert {f"para/img-{i}" for i in range(CLIENTS)} <= set(catalog["repositories"])


# --- two PATCHes on one session --------------------------------------------------------------


def test_concurrent_patches_on_one_session_one_wins(clean_node: HubProcess) -> None:
    """A PATCH holds the session while it streams; a second one meanwhile is refused with a
    spec error, and nothing of it gets mixed into the upload."""
    client = _client(clean_node)
    location = client.start_upload("race/slow")
    first, second = os.urandom(512 * 1024), os.urandom(512 * 1024)
    data = first + second
    refused = threading.Event()

    def slow_body() -> Iterator[bytes]:
        yield first
        refused.wait(30)  # keep streaming until the other PATCH has its answer
        yield second

    def request(i: int) -> requests.Response:
        if i == 0:
            return Client(clean_node.url).patch(location, slow_body(), 0, length=len(data))
        try:
            wait_for_lease(clean_node.env, clean_node.data_dir, location.rsplit("/", 1)[1])
            return Client(clean_node.url).patch(location, os.urandom(len(data)), 0)
        finally:
            refused.set()

    slow_r, fast_r = run_together(request, 2)
    assert slow_r.status_code == 202, slow_r.text
    assert slow_r.headers["Range"] == f"0-{len(data) - 1}"
    assert fast_r.status_code in (409, 416), fast_r.text
    assert error_codes(fast_r) == ["BLOB_UPLOAD_INVALID"]

    status = client.http.get(location, timeout=30)
    assert status.status_code == 204 and status.headers["Range"] == f"0-{len(data) - 1}"
    done = client.finish(location, sha256(data))
    assert done.status_code == 201, done.text
    assert client.get_blob("race/slow", sha256(data)) == data


def test_racing_patches_exactly_one_wins(clean_node: HubProcess) -> None:
    """Eight PATCHes of the same range released together: one 202, the rest spec errors."""
    client = _client(clean_node)
    location = client.start_upload("race/many")
    bodies = [os.urandom(256 * 1024) for _ in range(8)]
    responses = run_together(lambda i: Client(clean_node.url).patch(location, bodies[i], 0), 8)

    winners = [i for i, r in enumerate(responses) if r.status_code == 202]
    assert len(winners) == 1, [(r.status_code, r.text[:200]) for r in responses]
    for i, r in enumerate(responses):
        if i != winners[0]:
            assert r.status_code in (409, 416), r.text
            assert error_codes(r) == ["BLOB_UPLOAD_INVALID"]
    data = bodies[winners[0]]
    done = client.finish(location, sha256(data))
    assert done.status_code == 201, done.text
    assert client.get_blob("race/many", sha256(data)) == data


# --- idle sessions ---------------------------------------------------------------------------


IDLE_SECONDS = 3


@pytest.fixture(scope="module")
def idle_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    data_dir = tmp_path_factory.mktemp("idle")
    # Long enough that a loaded machine's delay between a POST and its PATCH is not idle.
    env = {**NODE_ENV, "DATABASE_URL": "", "HUB_UPLOAD_IDLE_TIMEOUT": str(IDLE_SECONDS)}
    hub = start_hub(data_dir, env=env)
    yield hub
    stop_soon(hub)


def test_idle_session_expires(idle_node: HubProcess) -> None:
    client = _client(idle_node)
    idle = client.start_upload("idle/repo")
    busy = client.start_upload("idle/repo")
    chunk = os.urandom(4096)
    assert client.patch(idle, chunk, 0).status_code == 202
    idle_saved = time.monotonic()  # the server saved it before answering
    # The busy session sees a request every 0.8 s: it outlives the idle one.
    offset = 0
    while offset < 4 * len(chunk) or time.monotonic() < idle_saved + IDLE_SECONDS + 0.5:
        r = client.patch(busy, chunk, offset)
        assert r.status_code == 202, r.text
        offset += len(chunk)
        time.sleep(0.8)
    done = client.finish(busy, sha256(chunk * (offset // len(chunk))))
    assert done.status_code == 201, done.text

    for method, kwargs in [("get", {}), ("patch", {"data": chunk}), ("put", {})]:
        r = getattr(client.http, method)(
            idle, params={"digest": sha256(chunk)} if method == "put" else None, timeout=30,
            **kwargs,
        )  # fmt: skip
        assert r.status_code == 404, (method, r.status_code, r.text)
        assert error_codes(r) == ["BLOB_UPLOAD_UNKNOWN"]
    upload_id = idle.rsplit("/", 1)[1]
    assert not (idle_node.data_dir / "storage" / "uploads" / upload_id).exists()
    assert client.get_blob("idle/repo", sha256(chunk * (offset // len(chunk)))) is not None
    assert_clean_log(idle_node)


def test_session_being_written_is_not_idle(idle_node: HubProcess) -> None:
    """A PATCH streaming for longer than the idle timeout keeps its session: a status
    request meanwhile must not expire (and delete) it under the writer."""
    client = _client(idle_node)
    location = client.start_upload("idle/slow")
    started = time.monotonic()
    first, second = os.urandom(64 * 1024), os.urandom(64 * 1024)
    data = first + second
    answered = threading.Event()

    def slow_body() -> Iterator[bytes]:
        yield first
        answered.wait(30)
        yield second

    patch_over = threading.Event()

    def request(i: int) -> requests.Response:
        if i == 0:
            try:
                return Client(idle_node.url).patch(location, slow_body(), 0, length=len(data))
            finally:
                patch_over.set()
        try:
            upload_id = location.rsplit("/", 1)[1]
            wait_for_lease(idle_node.env, idle_node.data_dir, upload_id, unless=patch_over)
            # Past the idle timeout:
            time.sleep(max(0.0, started + IDLE_SECONDS + 0.5 - time.monotonic()))
            return Client(idle_node.url).http.get(location, timeout=30)
        finally:
            answered.set()

    patched, status = run_together(request, 2)
    assert status.status_code == 204, status.text
    assert patched.status_code == 202, patched.text
    assert patched.headers["Range"] == f"0-{len(data) - 1}"
    done = client.finish(location, sha256(data))
    assert done.status_code == 201, done.text
    assert client.get_blob("idle/slow", sha256(data)) == data
    assert_clean_log(idle_node)

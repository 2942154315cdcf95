"""Several `hub serve` processes behind one name: one PostgreSQL database, one blob store.

An upload session lives in the database (size, running hash, store state), so any
request of a push may reach any node. And start-up refuses bad settings with one
line that names the variable.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.support.databases import fresh_database, postgres_base_url
from tests.support.nodes import (
    NODE_ENV,
    assert_clean_log,
    kill_node,
    query,
    reap_stopped,
    run_together,
    stop_soon,
    store_files,
    wait_for_lease,
)
from tests.support.ocipush import Client, Image, error_codes, sha256
from tests.support.servers import (
    ROOT,
    VENV_BIN,
    HubProcess,
    MotoS3,
    free_port,
    on_this_tree,
    start_hub,
)

pytestmark = pytest.mark.e2e

MiB = 1024 * 1024
SERVE_ARGS = ["--workers", "2", "--threads", "4"]
S3_BACKEND = ROOT / "registry" / "storage" / "s3.py"


@dataclass
class Cluster:
    a: HubProcess
    b: HubProcess
    storage: str
    data_dir: Path

    @property
    def nodes(self) -> tuple[HubProcess, HubProcess]:
        return self.a, self.b


@pytest.fixture(scope="session", autouse=True)
def _reap() -> Iterator[None]:
    """Nodes shut down in the background while other tests run; wait for them at the end."""
    yield
    reap_stopped()


def _bucket(moto: MotoS3) -> str:
    import boto3

    name = f"hub-multi-{uuid.uuid4().hex[:10]}"
    boto3.client(
        "s3",
        endpoint_url=moto.endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    ).create_bucket(Bucket=name)
    return name


@pytest.fixture(scope="module", params=["filesystem", pytest.param("s3", marks=pytest.mark.s3)])
def shared_cluster(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    """Two nodes on different ports sharing a fresh PostgreSQL database and one store."""
    if postgres_base_url() is None:
        pytest.skip("two nodes need a shared PostgreSQL: set DATABASE_URL=postgres://...")
    env = dict(NODE_ENV)
    if request.param == "s3":
        if not S3_BACKEND.exists():
            pytest.skip("the S3 backend (registry/storage/s3.py) is not there yet")
        moto: MotoS3 = request.getfixturevalue("moto_s3")
        env |= {
            "HUB_STORAGE": "s3",
            "HUB_S3_ENDPOINT_URL": moto.endpoint,
            "HUB_S3_BUCKET": _bucket(moto),
            "HUB_S3_ACCESS_KEY_ID": "test",
            "HUB_S3_SECRET_ACCESS_KEY": "test",
            "HUB_S3_REGION": "us-east-1",
        }
    # One data folder for both: with PostgreSQL it holds only the store and the secret key,
    # exactly what nodes share (an NFS mount, say) in a real deployment.
    data_dir = tmp_path_factory.mktemp(f"multi-{request.param}")
    with fresh_database(data_dir) as db_env, ExitStack() as stack:
        env |= db_env
        # Both at once: start-up is mostly waiting (imports, the database).
        with ThreadPoolExecutor(2) as pool:
            starting = [pool.submit(start_hub, data_dir, env=env, args=SERVE_ARGS) for _ in "ab"]
        for future in starting:
            if future.exception() is None:
                stack.callback(stop_soon, future.result())
        a, b = (future.result() for future in starting)
        yield Cluster(a, b, request.param, data_dir)


@pytest.fixture
def cluster(shared_cluster: Cluster) -> Iterator[Cluster]:
    yield shared_cluster
    assert_clean_log(shared_cluster.a, shared_cluster.b)


def test_chunked_upload_moves_between_nodes(cluster: Cluster) -> None:
    """Started on A, continued on B, finished on A: 3 chunks of 6 MiB, then read back on both."""
    a, b = Client(cluster.a.url), Client(cluster.b.url)
    repo = "multi/chunked"
    chunks = [os.urandom(6 * MiB) for _ in range(3)]
    data = b"".join(chunks)
    digest = sha256(data)

    location = a.start_upload(repo)
    path = location.split(cluster.a.url, 1)[1]
    offset = 0
    for client, chunk in zip([a, b, b], chunks, strict=True):
        r = client.patch(client.url(path), chunk, offset)
        assert r.status_code == 202, r.text
        offset += len(chunk)
        assert r.headers["Range"] == f"0-{offset - 1}"
        path = r.headers["Location"]
    # Either node tells where the session is.
    for client in (a, b):
        status = client.http.get(client.url(path), timeout=30)
        assert status.status_code == 204 and status.headers["Range"] == f"0-{len(data) - 1}"
    # A chunk at the wrong offset is refused on the other node too, and changes nothing.
    bad = b.patch(b.url(path), b"x" * 10, 0)
    assert bad.status_code == 416 and error_codes(bad) == ["BLOB_UPLOAD_INVALID"]
    assert bad.headers["Range"] == f"0-{len(data) - 1}"

    done = a.finish(a.url(path), digest)
    assert done.status_code == 201, done.text
    assert done.headers["Docker-Content-Digest"] == digest
    assert a.get_blob(repo, digest) == data
    assert b.get_blob(repo, digest) == data
    if cluster.storage == "filesystem":
        files = [p for p in store_files(cluster.data_dir) if p.name == digest.split(":")[1]]
        assert len(files) == 1 and files[0].stat().st_size == len(data)
        assert store_files(cluster.data_dir, "uploads") == []
    rows = query(cluster.a.env, cluster.data_dir, "SELECT count(*) FROM registry_upload")
    assert rows == [(0,)]


def test_image_pushed_on_one_node_pulls_on_the_other(cluster: Cluster) -> None:
    a, b = Client(cluster.a.url), Client(cluster.b.url)
    first = Image.random(7 * MiB, 300 * 1024, label="via-a")
    second = Image.random(2 * MiB, label="via-b")
    assert a.push_image("multi/app", "v1", first, chunk_size=3 * MiB) == first.digest
    assert b.push_image("multi/app", "v2", second) == second.digest
    for client, tag, image in [(b, "v1", first), (a, "v2", second), (a, "v1", first)]:
        pulled = client.pull_image("multi/app", tag)
        assert pulled.manifest == image.manifest
        assert pulled.config == image.config
        assert pulled.layers == image.layers
    tags = b.http.get(b.url("/v2/multi/app/tags/list"), timeout=30).json()
    assert tags["tags"] == ["v1", "v2"]


def test_both_nodes_push_the_same_blob_and_tag(cluster: Cluster) -> None:
    """Eight clients per node at once: one blob, one tag, consistent answers from both."""
    layer = os.urandom(3 * MiB)
    images = [Image.of([layer], label=f"client-{i}") for i in range(16)]

    def push(i: int) -> str:
        node = cluster.nodes[i % 2]
        return Client(node.url).push_image("multi/race", "latest", images[i], chunk_size=MiB)

    assert sorted(run_together(push, 16)) == sorted(image.digest for image in images)
    rows = query(
        cluster.a.env, cluster.data_dir, "SELECT count(*) FROM registry_blob WHERE digest = %s",
        sha256(layer),
    )  # fmt: skip
    assert rows == [(1,)]
    if cluster.storage == "filesystem":
        assert len([p for p in store_files(cluster.data_dir) if p.name == sha256(layer)[7:]]) == 1
    answers = {Client(node.url).get_manifest("multi/race", "latest")[:2] for node in cluster.nodes}
    assert len(answers) == 1
    body, digest = answers.pop()
    assert sha256(body) == digest and digest in {image.digest for image in images}


def test_a_patch_on_one_node_locks_out_the_other(cluster: Cluster) -> None:
    a, b = Client(cluster.a.url), Client(cluster.b.url)
    location = a.start_upload("multi/lease")
    path = location.split(cluster.a.url, 1)[1]
    first, second = os.urandom(MiB), os.urandom(MiB)

    refused = threading.Event()

    def slow_body() -> Iterator[bytes]:
        yield first
        refused.wait(30)  # keep streaming until B has answered
        yield second

    def request(i: int) -> requests.Response:
        if i == 0:
            return a.patch(a.url(path), slow_body(), 0, length=2 * MiB)
        try:
            wait_for_lease(cluster.a.env, cluster.data_dir, path.rsplit("/", 1)[1])
            return b.patch(b.url(path), os.urandom(2 * MiB), 0)
        finally:
            refused.set()

    won, lost = run_together(request, 2)
    assert won.status_code == 202, won.text
    assert lost.status_code in (409, 416), lost.text
    assert error_codes(lost) == ["BLOB_UPLOAD_INVALID"]
    done = b.finish(b.url(path), sha256(first + second))
    assert done.status_code == 201, done.text
    assert a.get_blob("multi/lease", sha256(first + second)) == first + second


def test_a_lease_left_by_a_killed_node_is_taken_over(cluster: Cluster) -> None:
    """A node dies (SIGKILL) while its request holds an upload's lease: nobody renews the
    lease any more, so another node's finishing PUT waits seconds for it to lapse and then
    completes the upload, instead of answering 409."""
    if cluster.storage != "filesystem":
        pytest.skip("the lease is the same on either store: once is enough")
    doomed = start_hub(cluster.data_dir, env=cluster.a.env, args=SERVE_ARGS, admin=False)
    client = Client(doomed.url)
    location = client.start_upload("multi/killed")
    path = location.split(doomed.url, 1)[1]
    upload_id = path.rsplit("/", 1)[1]
    first, second = os.urandom(MiB), os.urandom(MiB)
    streaming = threading.Event()

    def stalled_body() -> Iterator[bytes]:
        yield first
        streaming.wait(30)  # the node dies meanwhile

    def patch() -> None:
        try:
            client.patch(location, stalled_body(), 0, length=2 * MiB)
        except requests.RequestException:
            pass  # the node died under it

    patcher = threading.Thread(target=patch)
    patcher.start()
    try:
        wait_for_lease(cluster.a.env, cluster.data_dir, upload_id)
        kill_node(doomed)
    finally:
        streaming.set()
        patcher.join(30)
    b = Client(cluster.b.url)
    started = time.monotonic()
    done = b.finish(b.url(path), sha256(first + second), first + second)
    waited = time.monotonic() - started
    assert done.status_code == 201, done.text
    assert waited < 13, waited  # the lease (10 s) and no more
    assert b.get_blob("multi/killed", sha256(first + second)) == first + second


# --- start-up refuses bad settings -----------------------------------------------------------

BAD_SETTINGS = [
    ({"HUB_STORAGE": "bogus"}, "HUB_STORAGE"),
    ({"DATABASE_URL": "mysql://x"}, "DATABASE_URL"),
    ({"HUB_STORAGE": "s3", "HUB_S3_BUCKET": None}, "HUB_S3_BUCKET"),
    ({"HUB_UPLOAD_IDLE_TIMEOUT": "abc"}, "HUB_UPLOAD_IDLE_TIMEOUT"),
    ({"HUB_S3_SECRET_ACCESS_KEY_FILE": "/nonexistent"}, "HUB_S3_SECRET_ACCESS_KEY_FILE"),
    # Read by `hub serve` itself, after the settings loaded.
    # (--no-migrate: only to save time, these are read after migrate)
    ({"HUB_WEB_WORKERS": "abc", "--no-migrate": ""}, "HUB_WEB_WORKERS"),
    ({"HUB_WEB_TIMEOUT": "soon", "--no-migrate": ""}, "HUB_WEB_TIMEOUT"),
    ({"DATABASE_URL": "postgres://hub@127.0.0.1:1/hub"}, "DATABASE_URL"),
]


@pytest.mark.parametrize(
    ("settings_env", "variable"), BAD_SETTINGS, ids=[v for _, v in BAD_SETTINGS[:-1]] + ["db-down"]
)
def test_bad_setting_stops_startup_with_one_line(
    tmp_path: Path, settings_env: dict[str, str | None], variable: str
) -> None:
    env = on_this_tree({**os.environ, "HUB_DATA_DIR": str(tmp_path), "DATABASE_URL": ""})
    env.pop("DJANGO_SETTINGS_MODULE", None)
    args = [name for name in settings_env if name.startswith("--")]
    for name, value in settings_env.items():
        if name.startswith("--"):
            continue
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    port = free_port()
    proc = subprocess.Popen(
        [str(VENV_BIN / "hub"), "serve", "--bind", f"127.0.0.1:{port}", *args],
        env=env,
        cwd=str(ROOT),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        out, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
        pytest.fail(f"hub serve started despite {settings_env}:\n{out}\n{err}")
    assert proc.returncode != 0
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got:\n{err}\nstdout: {out}"
    assert variable in lines[-1], err
    assert lines[-1].startswith("hub: "), err


def _s3_leftovers(cluster: Cluster, upload_id: str) -> list[str]:
    import boto3

    env = cluster.a.env
    s3 = boto3.client(
        "s3",
        endpoint_url=env["HUB_S3_ENDPOINT_URL"],
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    prefix = f"uploads/{upload_id}/"
    bucket = env["HUB_S3_BUCKET"]
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])]
    mpus = s3.list_multipart_uploads(Bucket=bucket, Prefix=prefix).get("Uploads", [])
    return keys + [f"multipart upload {m['Key']}" for m in mpus]


@pytest.mark.parametrize("method", ["PATCH", "PUT"])
def test_cancel_on_one_node_while_the_other_writes(cluster: Cluster, method: str) -> None:
    """DELETE on B while a PATCH (or the finishing PUT) streams on A: the session is gone
    for both, no blob appears, and nothing the request wrote stays behind in the store."""
    a, b = Client(cluster.a.url), Client(cluster.b.url)
    location = a.start_upload("multi/cancel")
    path = location.split(cluster.a.url, 1)[1]
    upload_id = path.rsplit("/", 1)[1]
    # More than a part (S3 uploads one while the request streams) and a tail after it.
    first, second = os.urandom(6 * MiB), os.urandom(3 * MiB)
    digest = sha256(first + second)
    cancelled = threading.Event()

    def slow_body() -> Iterator[bytes]:
        yield first
        cancelled.wait(30)
        yield second

    def request(i: int) -> requests.Response:
        if i == 0 and method == "PATCH":
            return a.patch(a.url(path), slow_body(), 0, length=len(first) + len(second))
        if i == 0:
            return a.http.put(a.url(path), params={"digest": digest}, data=slow_body(), timeout=60)
        try:
            wait_for_lease(cluster.a.env, cluster.data_dir, upload_id)
            return b.http.delete(b.url(path), timeout=30)
        finally:
            cancelled.set()

    patched, deleted = run_together(request, 2)
    assert deleted.status_code == 204, deleted.text
    if cluster.storage == "filesystem":
        assert not (cluster.data_dir / "storage" / "uploads" / upload_id).exists()
    else:
        assert _s3_leftovers(cluster, upload_id) == []
    assert patched.status_code == 404, patched.text
    assert error_codes(patched) == ["BLOB_UPLOAD_UNKNOWN"]
    for client in (a, b):
        r = client.http.get(client.url(path), timeout=30)
        assert r.status_code == 404 and error_codes(r) == ["BLOB_UPLOAD_UNKNOWN"]
        r = client.http.head(client.url(f"/v2/multi/cancel/blobs/{digest}"), timeout=30)
        assert r.status_code == 404
    rows = query(
        cluster.a.env, cluster.data_dir, "SELECT count(*) FROM registry_blob WHERE digest = %s",
        digest,
    )  # fmt: skip
    assert rows == [(0,)]

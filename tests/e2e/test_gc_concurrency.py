"""Garbage collection while pushes go on, against a real `hub serve` on PostgreSQL.

The node collects every second with no grace period (the embedded scheduler, in its
gunicorn workers), and its repositories drop untagged manifests at once. Pushers move
their tags round after round over images that share layers, so what one pusher's old
image leaves behind is exactly what another is about to reference. A push may then be
told MANIFEST_BLOB_UNKNOWN (the blob went between its upload or HEAD and the manifest):
it pushes the blobs again, as a client would. In the end every tagged image pulls back
byte for byte, the store holds exactly the blobs the remaining manifests reference, and
the node never answered 5xx.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack

import boto3
import psycopg
import pytest

from tests.support.databases import fresh_database, postgres_base_url
from tests.support.nodes import NODE_ENV, assert_clean_log, query, run_together, stop_soon
from tests.support.ocipush import Client, Image, error_codes, sha256
from tests.support.servers import HubProcess, MotoS3, start_hub

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.postgres_only]

PUSHERS = 4
ROUNDS = 12
MIN_COLLECTIONS = 5
REPOS = ["gc/one", "gc/two"]
KiB = 1024


def _s3_env(moto: MotoS3) -> dict[str, str]:
    bucket = f"hub-gc-{uuid.uuid4().hex[:10]}"
    _s3(moto).create_bucket(Bucket=bucket)
    return {
        "HUB_STORAGE": "s3",
        "HUB_S3_ENDPOINT_URL": moto.endpoint,
        "HUB_S3_BUCKET": bucket,
        "HUB_S3_ACCESS_KEY_ID": "test",
        "HUB_S3_SECRET_ACCESS_KEY": "test",
    }


def _s3(moto: MotoS3):  # type: ignore[no-untyped-def]
    return boto3.client(
        "s3",
        endpoint_url=moto.endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


@pytest.fixture(params=["filesystem", pytest.param("s3", marks=pytest.mark.s3)])
def collecting_node(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[HubProcess]:
    if postgres_base_url() is None:
        pytest.skip("PostgreSQL only: set DATABASE_URL=postgres://...")
    data_dir = tmp_path_factory.mktemp(f"gc-{request.param}")
    with ExitStack() as stack:
        db_env = stack.enter_context(fresh_database(data_dir))
        store_env = _s3_env(request.getfixturevalue("moto_s3")) if request.param == "s3" else {}
        env = {
            **NODE_ENV,
            **db_env,
            **store_env,
            "HUB_GC_INTERVAL": "1",
            "HUB_GC_GRACE_SECONDS": "0",
            "HUB_UPLOAD_CLEANUP_INTERVAL": "0",
        }
        node = start_hub(data_dir, env=env, args=["--workers", "2", "--threads", "4"])
        stack.callback(stop_soon, node)
        yield node


def _push(client: Client, repo: str, tag: str, image: Image) -> int:
    """Push as docker does (HEAD each blob, upload the missing ones, then the manifest),
    again from the start when the manifest names a blob that went meanwhile; returns how
    many times it had to start again."""
    for attempt in range(30):
        for digest, data in image.blobs.items():
            head = client.http.head(client.url(f"/v2/{repo}/blobs/{digest}"), timeout=30)
            if head.status_code != 200:
                client.push_blob_monolithic(repo, data)
        response = client.http.put(
            client.url(f"/v2/{repo}/manifests/{tag}"),
            data=image.manifest,
            headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
            timeout=30,
        )
        if response.status_code == 201:
            return attempt
        assert error_codes(response) == ["MANIFEST_BLOB_UNKNOWN"], response.text
    raise AssertionError(f"{repo}:{tag} could not be pushed in 30 attempts")


def _runs(node: HubProcess) -> tuple[int, int, int]:
    """(collections finished, manifests removed, blobs removed) so far."""
    rows = query(
        node.env,
        node.data_dir,
        "SELECT count(*), coalesce(sum(manifests_removed), 0), coalesce(sum(blobs_removed), 0)"
        " FROM registry_gcrun WHERE finished_at IS NOT NULL AND NOT dry_run",
    )
    count, manifests, blobs = rows[0]
    return int(count), int(manifests), int(blobs)


def _wait_for_runs(node: HubProcess, more: int) -> None:
    start = _runs(node)[0]
    deadline = time.monotonic() + 60
    while _runs(node)[0] < start + more:
        assert time.monotonic() < deadline, "the node stopped collecting"
        time.sleep(0.2)


def _stored_digests(node: HubProcess, request: pytest.FixtureRequest) -> set[str]:
    if node.env.get("HUB_STORAGE") != "s3":
        root = node.data_dir / "storage" / "blobs"
        return {f"{p.parent.parent.name}:{p.name}" for p in root.rglob("*") if p.is_file()}
    client = _s3(request.getfixturevalue("moto_s3"))
    pages = client.get_paginator("list_objects_v2").paginate(
        Bucket=node.env["HUB_S3_BUCKET"], Prefix="blobs/"
    )
    keys = [o["Key"] for page in pages for o in page.get("Contents", [])]
    return {f"{key.split('/')[1]}:{key.split('/')[3]}" for key in keys}


def test_pushes_and_collections_together_lose_nothing(
    collecting_node: HubProcess, request: pytest.FixtureRequest
) -> None:
    node = collecting_node
    shared = [os.urandom(48 * KiB) for _ in range(5)]

    def image(pusher: int, round_: int) -> Image:
        layers = [shared[(pusher + round_) % 5], shared[(pusher + 2 * round_ + 1) % 5]]
        return Image.of([*layers, os.urandom(16 * KiB)], label=f"{pusher}-{round_}")

    # The repositories exist (first push) and drop untagged manifests at once.
    for repo in REPOS:
        _push(Client(node.url), repo, "warm-up", image(99, 0))
    with psycopg.connect(node.env["DATABASE_URL"], autocommit=True) as conn:
        conn.execute("UPDATE registry_repository SET untagged_manifest_hours = 0")
    _wait_for_runs(node, 1)
    finished_before = _runs(node)[0]

    def pusher(i: int) -> tuple[Image, int]:
        client = Client(node.url)
        repo, tag = REPOS[i % len(REPOS)], f"p{i}"
        restarts = 0
        latest = image(i, 0)
        round_ = 0
        # ROUNDS at least, and on until collections have run beside them: a quiet machine
        # pushes the ROUNDS faster than a few collections happen (the test once failed so).
        while round_ < ROUNDS or (
            round_ < ROUNDS * 5 and _runs(node)[0] - finished_before < MIN_COLLECTIONS
        ):
            latest = image(i, round_)
            restarts += _push(client, repo, tag, latest)
            if round_ % 3 == 2:  # a tag that comes and goes: more garbage, sooner
                extra = image(i + 10, round_)
                restarts += _push(client, repo, f"tmp{i}", extra)
                deleted = client.http.delete(client.url(f"/v2/{repo}/manifests/tmp{i}"))
                assert deleted.status_code == 202, deleted.text
            round_ += 1
        return latest, restarts

    results = run_together(pusher, PUSHERS)
    _wait_for_runs(node, 2)  # at least one whole collection after the last push

    runs, manifests_removed, blobs_removed = _runs(node)
    assert runs - finished_before >= MIN_COLLECTIONS, "too few collections ran beside the pushes"
    assert manifests_removed > 0 and blobs_removed > 0
    expected_blobs: set[str] = set()
    for i, (latest, _) in enumerate(results):
        pulled = Client(node.url).pull_image(REPOS[i % len(REPOS)], f"p{i}")
        assert pulled.manifest == latest.manifest
        assert pulled.config == latest.config and pulled.layers == latest.layers
        expected_blobs |= set(latest.blobs)
    for repo in REPOS:
        warm = Client(node.url).pull_image(repo, "warm-up")
        expected_blobs |= {sha256(b) for b in [warm.config, *warm.layers]}

    rows = query(node.env, node.data_dir, "SELECT digest FROM registry_blob")
    assert {row[0] for row in rows} == expected_blobs
    assert _stored_digests(node, request) == expected_blobs
    assert_clean_log(node)
    print(f"collections: {runs}, restarted pushes: {sum(r for _, r in results)}")

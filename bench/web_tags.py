#!/usr/bin/env python3
"""How long the first page of a repository with 10,000 tags takes to render (issue #6: < 300 ms).

    bench/web_tags.py [--tags 10000] [--repeat 20] [--images]

Runs in-process on a fresh SQLite data dir (or DATABASE_URL if set, which it fills: use a
scratch database), through Django's test client, signed in as the repository's owner, so
it measures Hub's own work (queries and templates), not the network. Prints the median and
the slowest render of the first page, newest first and by name, and of a filtered page.
With --images every other tag is an image manifest with its own config blob, whose platform
the page reads from the store (the first render; later ones from the cache); "cold" clears
the cache before each render.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tags", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--queries", action="store_true", help="print each query's time once")
    parser.add_argument("--images", action="store_true", help="half the tags are images")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("HUB_DATA_DIR", tempfile.mkdtemp(prefix="hub-bench-web-"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hub.settings")
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.cache import cache
    from django.core.management import call_command
    from django.test import Client

    from registry.models import Blob, Manifest, Repository, Tag
    from teams.actions import user_namespace_ensure

    call_command("migrate", verbosity=0, interactive=False)
    user = get_user_model().objects.create_user("bench", "bench@example.com", "x" * 20)
    namespace = user_namespace_ensure(user=user)
    repo = Repository.objects.create(name="bench/many", namespace=namespace)
    manifests = []
    configs: dict[int, Blob] = {}
    for n in range(args.tags):
        if args.images and n % 2:
            manifest, configs[n] = _image(repo, n)
            manifests.append(manifest)
            continue
        content = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.index.v1+json",
                "manifests": [],
                "annotations": {"n": str(n)},
            }
        ).encode()
        manifests.append(
            Manifest(
                repository=repo,
                digest="sha256:" + hashlib.sha256(content).hexdigest(),
                media_type="application/vnd.oci.image.index.v1+json",
                size=len(content),
                content=content,
            )
        )
    Manifest.objects.bulk_create(manifests, batch_size=1000)
    ids = list(Manifest.objects.filter(repository=repo).order_by("pk").values_list("pk", flat=True))
    if configs:
        Blob.objects.bulk_create(configs.values(), batch_size=1000)
        blob_ids = dict(Blob.objects.values_list("digest", "pk"))
        Manifest.blobs.through.objects.bulk_create(
            [
                Manifest.blobs.through(manifest_id=ids[n], blob_id=blob_ids[blob.digest])
                for n, blob in configs.items()
            ],
            batch_size=1000,
        )
    Tag.objects.bulk_create(
        [Tag(repository=repo, name=f"v{n:05d}", manifest_id=pk) for n, pk in enumerate(ids)],
        batch_size=1000,
    )
    client = Client()
    client.force_login(user)
    pages = [
        ("newest first", "/r/bench/many/"),
        ("by name", "/r/bench/many/?sort=name"),
        ("filtered", "/r/bench/many/?q=v09"),
    ]
    if args.images:
        pages.append(("cold", "/r/bench/many/"))
    for label, url in pages:
        assert client.get(url).status_code == 200  # warm up
        if args.queries:
            from django.db import connection
            from django.test.utils import CaptureQueriesContext

            with CaptureQueriesContext(connection) as captured:
                client.get(url)
            for query in captured.captured_queries:
                print(f"  {float(query['time']) * 1000:7.1f} ms  {query['sql'][:150]}")
        times = []
        for _ in range(args.repeat):
            if label == "cold":
                cache.clear()
            start = time.perf_counter()
            response = client.get(url)
            times.append((time.perf_counter() - start) * 1000)
            assert response.status_code == 200
        print(
            f"{args.tags} tags, {label:12}: median {statistics.median(times):6.1f} ms,"
            f" max {max(times):6.1f} ms"
        )
    return 0


def _image(repo: Any, n: int) -> tuple[Any, Any]:
    """An image manifest and its config, written to the store as a push would."""
    from registry.models import Blob, Manifest
    from registry.storage import get_storage

    config = json.dumps({"architecture": "arm64", "os": "linux", "n": n}).encode()
    config_digest = "sha256:" + hashlib.sha256(config).hexdigest()
    storage = get_storage()
    upload = f"bench-{n}"
    state = storage.upload_create(upload)
    state, _ = storage.upload_write(upload, state, 0, [config])
    storage.upload_commit(upload, state, config_digest)
    content = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config_digest,
                "size": len(config),
            },
            "layers": [],
        }
    ).encode()
    manifest = Manifest(
        repository=repo,
        digest="sha256:" + hashlib.sha256(content).hexdigest(),
        media_type="application/vnd.oci.image.manifest.v1+json",
        size=len(content),
        content=content,
    )
    return manifest, Blob(digest=config_digest, size=len(config))


if __name__ == "__main__":
    raise SystemExit(main())

#!/usr/bin/env python3
"""How long the first page of a repository with 10,000 tags takes to render (issue #6: < 300 ms).

    bench/web_tags.py [--tags 10000] [--repeat 20]

Runs in-process on a fresh SQLite data dir (or DATABASE_URL if set, which it fills: use a
scratch database), through Django's test client, signed in as the repository's owner, so
it measures Hub's own work (queries and templates), not the network. Prints the median and
the slowest render of the first page, newest first and by name, and of a filtered page.
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

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tags", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--queries", action="store_true", help="print each query's time once")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("HUB_DATA_DIR", tempfile.mkdtemp(prefix="hub-bench-web-"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hub.settings")
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.test import Client

    from registry.models import Manifest, Repository, Tag
    from teams.actions import user_namespace_ensure

    call_command("migrate", verbosity=0, interactive=False)
    user = get_user_model().objects.create_user("bench", "bench@example.com", "x" * 20)
    namespace = user_namespace_ensure(user=user)
    repo = Repository.objects.create(name="bench/many", namespace=namespace)
    manifests = []
    for n in range(args.tags):
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
    Tag.objects.bulk_create(
        [Tag(repository=repo, name=f"v{n:05d}", manifest_id=pk) for n, pk in enumerate(ids)],
        batch_size=1000,
    )
    client = Client()
    client.force_login(user)
    for label, url in [
        ("newest first", "/r/bench/many/"),
        ("by name", "/r/bench/many/?sort=name"),
        ("filtered", "/r/bench/many/?q=v09"),
    ]:
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
            start = time.perf_counter()
            response = client.get(url)
            times.append((time.perf_counter() - start) * 1000)
            assert response.status_code == 200
        print(
            f"{args.tags} tags, {label:12}: median {statistics.median(times):6.1f} ms,"
            f" max {max(times):6.1f} ms"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""`hub serve`: every pull is recorded and sealed by the workers' flush, none lost at exit.

Pulls are queued in each worker and written (events, seals, counts) by a background
thread; the last ones only when the worker exits on SIGTERM.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from tests.support.databases import fresh_database
from tests.support.servers import ADMIN_PASSWORD, ADMIN_USER, VENV_BIN, on_this_tree, start_hub

pytestmark = pytest.mark.e2e

ACCEPT = "application/vnd.oci.image.manifest.v1+json"
PULLS = 200


def _push(url: str, auth: tuple[str, str]) -> None:
    blobs = [b"{}", os.urandom(512)]
    for blob in blobs:
        digest = "sha256:" + hashlib.sha256(blob).hexdigest()
        done = requests.post(
            f"{url}/v2/{ADMIN_USER}/app/blobs/uploads/?digest={digest}",
            data=blob,
            auth=auth,
            timeout=30,
        )
        assert done.status_code == 201, done.text
    manifest = {
        "schemaVersion": 2,
        "mediaType": ACCEPT,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": "sha256:" + hashlib.sha256(blobs[0]).hexdigest(),
            "size": len(blobs[0]),
        },
        "layers": [
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": "sha256:" + hashlib.sha256(blobs[1]).hexdigest(),
                "size": len(blobs[1]),
            }
        ],
    }
    done = requests.put(
        f"{url}/v2/{ADMIN_USER}/app/manifests/v1",
        data=json.dumps(manifest).encode(),
        headers={"Content-Type": ACCEPT},
        auth=auth,
        timeout=30,
    )
    assert done.status_code == 201, done.text


def _hub(node_env: dict[str, str], data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = on_this_tree({**os.environ, "HUB_DATA_DIR": str(data_dir), **node_env})
    env.pop("DJANGO_SETTINGS_MODULE", None)
    return subprocess.run(
        [str(VENV_BIN / "hub"), *args], env=env, capture_output=True, text=True, check=False
    )


def test_it_records_and_seals_every_pull_and_writes_the_last_at_exit(tmp_path: Path) -> None:
    data_dir = tmp_path / "node"
    with fresh_database(tmp_path) as db_env:
        node = start_hub(data_dir, env=db_env, args=["--workers", "2"])
        try:
            auth = (ADMIN_USER, ADMIN_PASSWORD)
            _push(node.url, auth)

            def pull(_: int) -> int:
                with requests.Session() as session:
                    got = session.get(
                        f"{node.url}/v2/{ADMIN_USER}/app/manifests/v1",
                        headers={"Accept": ACCEPT},
                        auth=auth,
                        timeout=30,
                    )
                return got.status_code

            with ThreadPoolExecutor(8) as pool:
                assert set(pool.map(pull, range(PULLS))) == {200}
            # At once: the last batches are still queued in the workers.
            node.stop()
            assert node.proc.returncode == 0
            assert "Traceback" not in node.log()
        finally:
            node.stop()
        counted = _hub(
            db_env,
            data_dir,
            "shell",
            "-c",
            "from audit.models import Event;"
            "from registry.models import Repository;"
            "pulls = Event.objects.filter(action='manifest.pull');"
            "print(pulls.count(), pulls.filter(seal__isnull=True).count(),"
            f" Repository.objects.get(name='{ADMIN_USER}/app').pull_count)",
        )
        assert counted.returncode == 0, counted.stderr
        recorded, unsealed, pull_count = map(int, counted.stdout.split()[-3:])
        assert (recorded, unsealed, pull_count) == (PULLS, 0, PULLS), node.log()[-6000:]
        # The other events (the push) are the sealer thread's, which may not have had a
        # round yet: seal them, then check every chain with no grace at all.
        assert _hub(db_env, data_dir, "audit", "seal").returncode == 0
        verified = _hub(db_env, data_dir, "audit", "verify", "--grace", "0")
        assert verified.returncode == 0, verified.stdout + verified.stderr
        assert f"user:{ADMIN_USER}: seq 1.." in verified.stdout

"""podman build, push (with a cross-repository mount on the second push) and pull."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.e2e.conftest import PODMAN_CREDS, Hub, busybox_context, unique
from tests.e2e.images import DOCKER_MANIFEST, OCI_MANIFEST, sha256

pytestmark = pytest.mark.e2e

ACCEPT = {"Accept": f"{OCI_MANIFEST}, {DOCKER_MANIFEST}"}


def _layer_files(blob: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob))) as tar:
        return {
            member.name.lstrip("./"): tar.extractfile(member).read()  # type: ignore[union-attr]
            for member in tar.getmembers()
            if member.isfile()
        }


def test_push_mount_and_pull(hub: Hub, podman, tmp_path: Path) -> None:
    nonce = uuid.uuid4().hex
    context = busybox_context(tmp_path / "ctx", nonce)
    local = f"localhost/e2e-podman-{nonce[:8]}:latest"
    podman(
        "build",
        "--isolation=chroot",
        "-f",
        str(context / "Containerfile"),
        "-t",
        local,
        str(context),
    )

    first, second = unique("podman-a"), unique("podman-b")
    podman("push", "--tls-verify=false", PODMAN_CREDS, local, f"{hub.host}/{first}:v1")
    podman("push", "--tls-verify=false", PODMAN_CREDS, local, f"{hub.host}/{second}:v1")

    # Both repositories now hold the same image, with all its blobs.
    one = hub.get(f"/v2/{first}/manifests/v1", headers=ACCEPT)
    two = hub.get(f"/v2/{second}/manifests/v1", headers=ACCEPT)
    assert one.status_code == two.status_code == 200
    assert one.headers["Docker-Content-Digest"] == sha256(one.content)
    manifest = json.loads(two.content)
    layers = [layer["digest"] for layer in manifest["layers"]]
    assert len(layers) == 2  # busybox, nonce
    for digest in [manifest["config"]["digest"], *layers]:
        head = hub.head(f"/v2/{second}/blobs/{digest}")
        assert head.status_code == 200, digest
    files: dict[str, bytes] = {}
    for digest in layers:
        blob = hub.get(f"/v2/{second}/blobs/{digest}").content
        assert sha256(blob) == digest
        files.update(_layer_files(blob))
    assert files["bin/busybox"] == Path("/bin/busybox").read_bytes()
    assert files["nonce.txt"] == f"{nonce}\n".encode()

    # The second push did not upload the layers again: it mounted them from the first
    # repository, and Hub said 201 Created to the mount.
    for digest in layers:
        mounts = hub.access_log(
            rf"^POST /v2/{second}/blobs/uploads/\?.*mount={quote(digest, safe='')}"
        )
        assert mounts, f"no mount of {digest} in the log"
        assert quote(first, safe="") in mounts[-1]["target"]
        assert [m["status"] for m in mounts] == ["201"]
        # ... and no upload session into the second repository ever finished with it.
        assert not hub.access_log(
            rf"^PUT /v2/{second}/blobs/uploads/\S*digest={quote(digest, safe='')}"
        )

    # Pull it back into empty local storage.
    podman("rmi", "--force", local)
    pulled_ref = f"{hub.host}/{second}:v1"
    podman("pull", "--tls-verify=false", PODMAN_CREDS, pulled_ref)
    inspect = json.loads(podman("image", "inspect", pulled_ref).stdout)[0]
    assert inspect["Digest"] == two.headers["Docker-Content-Digest"]
    assert f"{hub.host}/{second}@{inspect['Digest']}" in inspect["RepoDigests"]
    assert (
        inspect["RootFS"]["Layers"]
        == json.loads(hub.get(f"/v2/{second}/blobs/{manifest['config']['digest']}").content)[
            "rootfs"
        ]["diff_ids"]
    )
    # Read the files back out of the pulled image (podman run needs rlimits this sandbox
    # refuses, so mount the image's storage instead: `podman image mount`).
    mount_point = Path(podman("image", "mount", pulled_ref).stdout.strip())
    try:
        assert (mount_point / "nonce.txt").read_text() == f"{nonce}\n"
        assert (mount_point / "bin/busybox").read_bytes() == Path("/bin/busybox").read_bytes()
    finally:
        podman("image", "unmount", pulled_ref, check=False)

"""skopeo against Hub: OCI images, multi-platform indexes and Docker schema 2 conversions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.conftest import (
    SKOPEO_CREDS,
    SKOPEO_DEST_CREDS,
    SKOPEO_SRC_CREDS,
    Hub,
    unique,
)
from tests.e2e.images import (
    DOCKER_CONFIG,
    DOCKER_LAYER_GZIP,
    DOCKER_MANIFEST,
    OCI_INDEX,
    OCI_MANIFEST,
    layout_blob,
    make_image,
    read_layout,
    sha256,
    write_image_layout,
    write_index_layout,
)

pytestmark = pytest.mark.e2e

# Plain HTTP, signed in as the site administrator (skopeo does the bearer dance itself).
REMOTE = ("--tls-verify=false", SKOPEO_CREDS)  # inspect, list-tags, delete
TO_HUB = ("--dest-tls-verify=false", SKOPEO_DEST_CREDS)  # copy into Hub
FROM_HUB = ("--src-tls-verify=false", SKOPEO_SRC_CREDS)  # copy out of Hub


def test_copy_inspect_list_tags_copy_back_and_delete(hub: Hub, skopeo, tmp_path: Path) -> None:
    image = make_image(layer_sizes=(300 * 1024, 1024 * 1024 + 17, 5 * 1024))
    source = write_image_layout(tmp_path / "src", image, "v1")
    repo = unique("skopeo")
    ref = f"docker://{hub.host}/{repo}"

    skopeo("copy", *TO_HUB, f"oci:{source}:v1", f"{ref}:v1")
    skopeo("copy", *TO_HUB, f"oci:{source}:v1", f"{ref}:v2")

    # The manifest went up byte for byte: same digest, and the raw bytes are ours.
    raw = skopeo("inspect", *REMOTE, "--raw", f"{ref}:v1").stdout.encode()
    assert raw == image.manifest
    inspected = json.loads(skopeo("inspect", *REMOTE, f"{ref}:v1").stdout)
    assert inspected["Digest"] == image.digest
    assert inspected["Layers"] == [layer.digest for layer in image.layers]
    assert inspected["Architecture"] == "amd64"
    config = json.loads(skopeo("inspect", *REMOTE, "--config", "--raw", f"{ref}:v1").stdout)
    assert config["rootfs"]["diff_ids"] == [layer.diff_id for layer in image.layers]

    tags = json.loads(skopeo("list-tags", *REMOTE, ref).stdout)
    assert tags["Repository"] == f"{hub.host}/{repo}"
    assert sorted(tags["Tags"]) == ["v1", "v2"]

    # Hub serves each blob with the right length and bytes.
    for layer in image.layers:
        response = hub.get(f"/v2/{repo}/blobs/{layer.digest}")
        assert response.status_code == 200
        assert response.content == layer.blob
        assert response.headers["Docker-Content-Digest"] == layer.digest

    # Back into an OCI layout: same manifest digest, same layer bytes.
    back = tmp_path / "back"
    skopeo("copy", *FROM_HUB, f"{ref}:v1", f"oci:{back}:v1")
    entries, blobs = read_layout(back)
    assert [entry["digest"] for entry in entries] == [image.digest]
    assert blobs[image.digest] == image.manifest
    for layer in image.layers:
        assert layout_blob(back, layer.digest) == layer.blob
    assert layout_blob(back, sha256(image.config)) == image.config

    # skopeo delete resolves the tag and deletes the manifest by digest.
    skopeo("delete", *REMOTE, f"{ref}:v1")
    assert hub.get(f"/v2/{repo}/manifests/{image.digest}").status_code == 404
    gone = skopeo("inspect", *REMOTE, "--raw", f"{ref}:v1", check=False)
    assert gone.returncode != 0
    assert "manifest unknown" in gone.stderr.lower()
    tags_after = hub.get(f"/v2/{repo}/tags/list").json()
    assert tags_after["tags"] == []  # v2 pointed at the same manifest


def test_multi_platform_index_copy_all(hub: Hub, skopeo, tmp_path: Path) -> None:
    images = [
        make_image(layer_sizes=(40 * 1024, 90 * 1024), arch="amd64"),
        make_image(layer_sizes=(70 * 1024,), arch="arm64"),
    ]
    multi = write_index_layout(tmp_path / "src", images, "multi")
    repo = unique("skopeo-index")
    ref = f"docker://{hub.host}/{repo}:multi"

    skopeo("copy", "--all", *TO_HUB, f"oci:{tmp_path / 'src'}:multi", ref)

    raw = skopeo("inspect", *REMOTE, "--raw", ref).stdout.encode()
    assert raw == multi.index
    response = hub.get(f"/v2/{repo}/manifests/multi", headers={"Accept": OCI_INDEX})
    assert response.headers["Content-Type"] == OCI_INDEX
    assert response.headers["Docker-Content-Digest"] == multi.digest
    for image in images:
        child = hub.get(f"/v2/{repo}/manifests/{image.digest}", headers={"Accept": OCI_MANIFEST})
        assert child.status_code == 200
        assert child.content == image.manifest
    # skopeo picks the platform it is asked for out of the index.
    arm = json.loads(
        skopeo("inspect", *REMOTE, "--override-arch", "arm64", "--override-os", "linux", ref).stdout
    )
    assert arm["Digest"] == multi.digest  # skopeo reports the digest of what the tag names
    assert arm["Architecture"] == "arm64"
    assert arm["Layers"] == [layer.digest for layer in images[1].layers]

    back = tmp_path / "back"
    skopeo("copy", "--all", *FROM_HUB, ref, f"oci:{back}:multi")
    entries, blobs = read_layout(back)
    assert [entry["digest"] for entry in entries] == [multi.digest]
    assert blobs[multi.digest] == multi.index
    for image in images:
        assert blobs[image.digest] == image.manifest
        for layer in image.layers:
            assert blobs[layer.digest] == layer.blob


def test_docker_schema2_conversion(hub: Hub, skopeo, tmp_path: Path) -> None:
    image = make_image(layer_sizes=(128 * 1024, 8 * 1024))
    source = write_image_layout(tmp_path / "src", image, "v1")
    repo = unique("skopeo-v2s2")
    ref = f"docker://{hub.host}/{repo}:v1"

    skopeo("copy", "--format", "v2s2", *TO_HUB, f"oci:{source}:v1", ref)

    raw = skopeo("inspect", *REMOTE, "--raw", ref).stdout.encode()
    manifest = json.loads(raw)
    assert manifest["mediaType"] == DOCKER_MANIFEST
    assert manifest["config"]["mediaType"] == DOCKER_CONFIG
    assert [layer["mediaType"] for layer in manifest["layers"]] == [DOCKER_LAYER_GZIP] * 2
    # Converting the manifest keeps the (gzip) layers as they are.
    assert [layer["digest"] for layer in manifest["layers"]] == [
        layer.digest for layer in image.layers
    ]
    response = hub.get(f"/v2/{repo}/manifests/v1", headers={"Accept": DOCKER_MANIFEST})
    assert response.headers["Content-Type"] == DOCKER_MANIFEST
    assert response.headers["Docker-Content-Digest"] == sha256(raw)
    assert response.content == raw
    config = hub.get(f"/v2/{repo}/blobs/{manifest['config']['digest']}")
    assert sha256(config.content) == manifest["config"]["digest"]
    assert json.loads(config.content)["rootfs"]["diff_ids"] == [
        layer.diff_id for layer in image.layers
    ]

    back = tmp_path / "back"
    skopeo("copy", *FROM_HUB, ref, f"dir:{back}")
    assert json.loads((back / "manifest.json").read_bytes()) == manifest
    for layer in image.layers:
        assert (back / layer.digest.removeprefix("sha256:")).read_bytes() == layer.blob

"""Tiny OCI image layouts written in Python: no daemon, no network, unique bytes each call."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canonical_json(doc: object) -> bytes:
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()


def tar_of(files: dict[str, bytes]) -> bytes:
    """A reproducible tar holding `files` (path -> bytes)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            info.mtime = 1_700_000_000
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@dataclass
class Layer:
    diff: bytes  # the uncompressed tar
    blob: bytes  # what the registry stores (gzip)

    @property
    def digest(self) -> str:
        return sha256(self.blob)

    @property
    def diff_id(self) -> str:
        return sha256(self.diff)


def random_layer(index: int, size: int) -> Layer:
    diff = tar_of({f"layer{index}.bin": os.urandom(size)})
    return Layer(diff, gzip.compress(diff, compresslevel=1, mtime=0))


@dataclass
class Image:
    """One platform's image: its manifest, config and layers, as bytes."""

    manifest: bytes
    config: bytes
    layers: list[Layer]
    platform: dict[str, str] = field(default_factory=dict)

    @property
    def digest(self) -> str:
        return sha256(self.manifest)

    def blobs(self) -> dict[str, bytes]:
        out = {sha256(self.config): self.config, self.digest: self.manifest}
        out.update({layer.digest: layer.blob for layer in self.layers})
        return out

    def descriptor(self) -> dict[str, object]:
        desc: dict[str, object] = {
            "mediaType": OCI_MANIFEST,
            "digest": self.digest,
            "size": len(self.manifest),
        }
        if self.platform:
            desc["platform"] = self.platform
        return desc


def make_image(
    *, layer_sizes: tuple[int, ...] = (64 * 1024, 256 * 1024, 32 * 1024), arch: str = "amd64"
) -> Image:
    layers = [random_layer(i, size) for i, size in enumerate(layer_sizes)]
    config = canonical_json(
        {
            "architecture": arch,
            "os": "linux",
            "config": {"Cmd": ["/bin/true"]},
            "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]},
            "history": [{"created_by": f"e2e layer {i}"} for i in range(len(layers))],
        }
    )
    manifest = canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": sha256(config), "size": len(config)},
            "layers": [
                {"mediaType": OCI_LAYER_GZIP, "digest": layer.digest, "size": len(layer.blob)}
                for layer in layers
            ],
        }
    )
    return Image(manifest, config, layers, {"architecture": arch, "os": "linux"})


def _write_blobs(layout: Path, blobs: dict[str, bytes]) -> None:
    blob_dir = layout / "blobs" / "sha256"
    blob_dir.mkdir(parents=True, exist_ok=True)
    for digest, data in blobs.items():
        (blob_dir / digest.removeprefix("sha256:")).write_bytes(data)


def _write_index(layout: Path, entries: list[dict[str, object]]) -> None:
    (layout / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}
    (layout / "index.json").write_bytes(canonical_json(index))


def write_image_layout(layout: Path, image: Image, tag: str) -> Path:
    """An OCI image layout holding `image` under `tag`."""
    _write_blobs(layout, image.blobs())
    desc = image.descriptor()
    desc.pop("platform", None)
    desc["annotations"] = {"org.opencontainers.image.ref.name": tag}
    _write_index(layout, [desc])
    return layout


@dataclass
class MultiPlatform:
    index: bytes
    images: list[Image]

    @property
    def digest(self) -> str:
        return sha256(self.index)


def write_index_layout(layout: Path, images: list[Image], tag: str) -> MultiPlatform:
    """An OCI layout whose `tag` names an image index of `images` (one per platform)."""
    index = canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [image.descriptor() for image in images],
        }
    )
    blobs: dict[str, bytes] = {sha256(index): index}
    for image in images:
        blobs.update(image.blobs())
    _write_blobs(layout, blobs)
    entry = {
        "mediaType": OCI_INDEX,
        "digest": sha256(index),
        "size": len(index),
        "annotations": {"org.opencontainers.image.ref.name": tag},
    }
    _write_index(layout, [entry])
    return MultiPlatform(index, images)


def read_layout(layout: Path) -> tuple[list[dict[str, object]], dict[str, bytes]]:
    """index.json's manifests and every blob (digest -> bytes) of an OCI layout."""
    index = json.loads((layout / "index.json").read_bytes())
    blobs = {
        "sha256:" + path.name: path.read_bytes()
        for path in (layout / "blobs" / "sha256").iterdir()
        if path.is_file()
    }
    return index["manifests"], blobs


def layout_blob(layout: Path, digest: str) -> bytes:
    return (layout / "blobs" / "sha256" / digest.removeprefix("sha256:")).read_bytes()

"""What the manifest page shows: a manifest's parts, an image's config, an index's platforms.

Manifests are in the database; an image config is a blob, read from the store (it is
small, and linked to the repository through the manifest).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.core.cache import cache

from registry import mediatypes as mt
from registry.models import Blob, Manifest
from registry.storage import StorageError, get_storage

CONFIG_MAX_BYTES = 1024 * 1024
# A blob never changes under its digest, so a config's platform is cached for long.
_PLATFORM_KEY = "hub:web:platform:"
_PLATFORM_SECONDS = 30 * 24 * 3600
IMAGE_CONFIGS = (
    "application/vnd.oci.image.config.v1+json",
    "application/vnd.docker.container.image.v1+json",
)


@dataclass
class Descriptor:
    media_type: str
    digest: str
    size: int
    platform: str = ""
    artifact_type: str = ""
    annotations: dict[str, str] = field(default_factory=dict)


@dataclass
class ImageConfig:
    platform: str = ""
    created: str = ""
    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)
    working_dir: str = ""
    user: str = ""
    env: list[str] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    exposed_ports: list[str] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Parsed:
    kind: str  # "image", "index" or "other"
    config: Descriptor | None = None
    layers: list[Descriptor] = field(default_factory=list)
    manifests: list[Descriptor] = field(default_factory=list)
    subject: str = ""
    artifact_type: str = ""
    annotations: dict[str, str] = field(default_factory=dict)

    @property
    def total_size(self) -> int:
        parts = [*self.layers, *([self.config] if self.config else [])]
        return sum(d.size for d in parts)


def platform_name(value: Any) -> str:
    if not isinstance(value, dict):
        return ""
    parts = [str(value.get("os", "")), str(value.get("architecture", ""))]
    if value.get("variant"):
        parts.append(str(value["variant"]))
    return "/".join(p for p in parts if p)


def _descriptor(value: Any) -> Descriptor | None:
    if not isinstance(value, dict) or not isinstance(value.get("digest"), str):
        return None
    size = value.get("size")
    notes = value.get("annotations")
    return Descriptor(
        media_type=str(value.get("mediaType", "")),
        digest=value["digest"],
        size=size if isinstance(size, int) else 0,
        platform=platform_name(value.get("platform")),
        artifact_type=str(value.get("artifactType", "")),
        annotations={str(k): str(v) for k, v in notes.items()} if isinstance(notes, dict) else {},
    )


def _descriptors(values: Any) -> list[Descriptor]:
    if not isinstance(values, list):
        return []
    return [d for d in (_descriptor(v) for v in values) if d is not None]


def parse(manifest: Manifest) -> Parsed:
    try:
        body = json.loads(bytes(manifest.content))
    except (ValueError, TypeError):
        return Parsed(kind="other")
    if not isinstance(body, dict):
        return Parsed(kind="other")
    notes = body.get("annotations")
    subject = _descriptor(body.get("subject"))
    parsed = Parsed(
        kind="other",
        subject=subject.digest if subject else "",
        artifact_type=str(body.get("artifactType", "")),
        annotations={str(k): str(v) for k, v in notes.items()} if isinstance(notes, dict) else {},
    )
    if manifest.media_type in mt.INDEXES:
        parsed.kind = "index"
        parsed.manifests = _descriptors(body.get("manifests"))
    elif manifest.media_type in mt.IMAGE_MANIFESTS:
        parsed.kind = "image"
        parsed.config = _descriptor(body.get("config"))
        parsed.layers = _descriptors(body.get("layers"))
        config = parsed.config
        if not parsed.artifact_type and config and config.media_type not in IMAGE_CONFIGS:
            parsed.artifact_type = config.media_type  # an artifact's type, by OCI convention
    return parsed


def platforms(manifest: Manifest) -> list[str]:
    """An index's platforms, from its own bytes (no other read)."""
    if manifest.media_type not in mt.INDEXES:
        return []
    return [d.platform for d in parse(manifest).manifests if d.platform]


def _strings(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


def _step(value: dict[str, Any]) -> dict[str, Any]:
    return {
        "created": str(value.get("created") or ""),
        "created_by": str(value.get("created_by") or value.get("comment") or ""),
        "empty_layer": bool(value.get("empty_layer")),
    }


def _image_config(descriptor: Descriptor | None) -> bool:
    return (
        descriptor is not None
        and descriptor.size <= CONFIG_MAX_BYTES
        and descriptor.media_type in IMAGE_CONFIGS
    )


def _read_json(digest: str) -> dict[str, Any] | None:
    try:
        body = json.loads(b"".join(get_storage().blob_read(digest)))
    except (StorageError, OSError, ValueError):
        return None
    return body if isinstance(body, dict) else None


def read_config(manifest: Manifest, descriptor: Descriptor | None) -> ImageConfig | None:
    """The image config, if it is an image config this manifest references and it is small."""
    if descriptor is None or not _image_config(descriptor):
        return None
    if not Blob.objects.filter(digest=descriptor.digest, manifests=manifest).exists():
        return None
    body = _read_json(descriptor.digest)
    if body is None:
        return None
    run = body.get("config") if isinstance(body.get("config"), dict) else {}
    assert isinstance(run, dict)  # noqa: S101 - for mypy
    labels = run.get("Labels")
    ports = run.get("ExposedPorts")
    history = body.get("history")
    return ImageConfig(
        platform=platform_name(body),
        created=str(body.get("created", "")),
        entrypoint=_strings(run.get("Entrypoint")),
        cmd=_strings(run.get("Cmd")),
        working_dir=str(run.get("WorkingDir") or ""),
        user=str(run.get("User") or ""),
        env=_strings(run.get("Env")),
        labels={str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else {},
        exposed_ports=sorted(str(p) for p in ports) if isinstance(ports, dict) else [],
        history=[_step(h) for h in history if isinstance(h, dict)]
        if isinstance(history, list)
        else [],
    )


def page_platforms(manifests: Sequence[Manifest]) -> dict[int, list[str]]:
    """Each manifest's platforms, for one page of tags: an index's from its own bytes, an
    image's from its config blob (only one the manifest links; cached by digest, so a page
    reads the store only for configs it has not shown before)."""
    found: dict[int, list[str]] = {}
    configs: dict[int, str] = {}
    for manifest in manifests:
        if manifest.media_type in mt.INDEXES:
            found[manifest.pk] = platforms(manifest)
        elif manifest.media_type in mt.IMAGE_MANIFESTS:
            config = parse(manifest).config
            if config is not None and _image_config(config):
                configs[manifest.pk] = config.digest
    if not configs:
        return found
    linked = set(
        Manifest.blobs.through.objects.filter(
            manifest_id__in=list(configs), blob__digest__in=set(configs.values())
        ).values_list("manifest_id", "blob__digest")
    )
    digests = {digest for pk, digest in configs.items() if (pk, digest) in linked}
    known: dict[str, str] = {
        key.removeprefix(_PLATFORM_KEY): value
        for key, value in cache.get_many([_PLATFORM_KEY + d for d in digests]).items()
    }
    read: dict[str, str] = {}
    for digest in digests - set(known):
        body = _read_json(digest)
        if body is not None:
            read[digest] = platform_name(body)
    if read:
        cache.set_many({_PLATFORM_KEY + d: p for d, p in read.items()}, _PLATFORM_SECONDS)
    known |= read
    for pk, digest in configs.items():
        if known.get(digest) and (pk, digest) in linked:
            found[pk] = [known[digest]]
    return found

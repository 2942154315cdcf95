"""Manifests: checked on the way in, stored whole, found by tag or digest."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import transaction

import audit
from registry import mediatypes as mt
from registry.digests import Digest, DigestError, parse_digest
from registry.errors import RegistryError
from registry.locks import hold
from registry.models import Blob, Manifest, ManifestChild, Repository, RepositoryBlob, Tag
from registry.names import TAG_RE
from registry.policies import rules
from registry.webhooks import dispatch as webhooks


@dataclass
class ParsedManifest:
    media_type: str
    artifact_type: str = ""
    subject: str = ""
    annotations: dict[str, Any] = field(default_factory=dict)
    blobs: dict[str, int] = field(default_factory=dict)  # digest -> size
    children: dict[str, int] = field(default_factory=dict)  # digest -> size


def _invalid(message: str, **detail: Any) -> RegistryError:
    return RegistryError("MANIFEST_INVALID", message, detail=detail or None)


def _descriptor(value: Any, where: str) -> tuple[str, int, str, dict[str, Any]]:
    if not isinstance(value, dict):
        raise _invalid(f"{where} must be a descriptor object")
    digest, size, media_type = value.get("digest"), value.get("size"), value.get("mediaType")
    if not isinstance(digest, str):
        raise _invalid(f"{where}.digest is missing")
    try:
        parse_digest(digest)
    except DigestError as exc:
        raise _invalid(f"{where}.digest: {exc}") from None
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise _invalid(f"{where}.size must be a non-negative integer")
    if not isinstance(media_type, str) or not media_type:
        raise _invalid(f"{where}.mediaType is missing")
    return digest, size, media_type, value


def parse_manifest(content: bytes, content_type: str) -> ParsedManifest:
    """Check a manifest's JSON and structure; what it references is checked by the caller."""
    content_type = content_type.split(";", 1)[0].strip()
    if content_type in mt.DOCKER_SCHEMA1:
        raise RegistryError(
            "UNSUPPORTED", "Docker schema 1 manifests are not supported; push schema 2 or OCI"
        )
    try:
        doc = json.loads(content)
    except (ValueError, UnicodeDecodeError):
        raise _invalid("manifest is not valid JSON") from None
    if not isinstance(doc, dict):
        raise _invalid("manifest must be a JSON object")
    if doc.get("schemaVersion") == 1:
        raise RegistryError("UNSUPPORTED", "Docker schema 1 manifests are not supported")
    if doc.get("schemaVersion") != 2:
        raise _invalid("schemaVersion must be 2")
    body_type = doc.get("mediaType")
    if body_type is not None and not isinstance(body_type, str):
        raise _invalid("mediaType must be a string")
    if body_type and content_type and body_type != content_type:
        raise _invalid(
            "mediaType does not match Content-Type", mediaType=body_type, contentType=content_type
        )
    media_type = body_type or content_type
    if not media_type:
        media_type = mt.OCI_INDEX if "manifests" in doc else mt.OCI_MANIFEST
    if media_type not in mt.MANIFESTS:
        raise RegistryError(
            "UNSUPPORTED", f"unsupported manifest media type {media_type[:200]!r}", status=415
        )
    parsed = ParsedManifest(media_type=media_type)
    artifact_type = doc.get("artifactType")
    if artifact_type is not None:
        if not isinstance(artifact_type, str):
            raise _invalid("artifactType must be a string")
        parsed.artifact_type = artifact_type
    annotations = doc.get("annotations")
    if annotations is not None:
        if not isinstance(annotations, dict) or not all(
            isinstance(v, str) for v in annotations.values()
        ):
            raise _invalid("annotations must map strings to strings")
        parsed.annotations = annotations
    if "subject" in doc:
        parsed.subject = _descriptor(doc["subject"], "subject")[0]

    if media_type in mt.IMAGE_MANIFESTS:
        if "manifests" in doc:
            raise _invalid("an image manifest has no manifests list")
        config = _descriptor(doc.get("config"), "config")
        parsed.blobs[config[0]] = config[1]
        if not parsed.artifact_type and media_type == mt.OCI_MANIFEST:
            parsed.artifact_type = config[2]
        layers = doc.get("layers", [])
        if not isinstance(layers, list):
            raise _invalid("layers must be a list")
        for i, layer in enumerate(layers):
            digest, size, layer_type, raw = _descriptor(layer, f"layers[{i}]")
            if layer_type in mt.FOREIGN_LAYERS and raw.get("urls"):
                continue
            parsed.blobs[digest] = size
    else:
        if "layers" in doc or "config" in doc:
            raise _invalid("an index has no config or layers")
        manifests = doc.get("manifests")
        if not isinstance(manifests, list):
            raise _invalid("manifests must be a list")
        for i, child in enumerate(manifests):
            digest, size, _, _ = _descriptor(child, f"manifests[{i}]")
            parsed.children[digest] = size
    _check_storable(parsed)
    return parsed


def _check_storable(parsed: ParsedManifest) -> None:
    """artifactType and annotations go to text columns, which cannot hold NUL (PostgreSQL)."""
    texts = [parsed.artifact_type, *parsed.annotations, *parsed.annotations.values()]
    if any("\x00" in text for text in texts):
        raise _invalid("artifactType, mediaType and annotations must not contain NUL")


def _check_references(
    repository: Repository, parsed: ParsedManifest
) -> tuple[list[int], list[int]]:
    blob_ids: list[int] = []
    if parsed.blobs:
        found = {
            digest: (blob_id, size)
            for digest, blob_id, size in RepositoryBlob.objects.filter(
                repository=repository, blob__digest__in=list(parsed.blobs)
            ).values_list("blob__digest", "blob_id", "blob__size")
        }
        for digest, size in parsed.blobs.items():
            if digest not in found:
                raise RegistryError("MANIFEST_BLOB_UNKNOWN", detail={"digest": digest})
            if found[digest][1] != size:
                raise _invalid(
                    "descriptor size does not match the blob",
                    digest=digest,
                    size=size,
                    blobSize=found[digest][1],
                )
            blob_ids.append(found[digest][0])
        # Held until commit: a garbage collection skips them, or has deleted them already.
        held = hold(Blob, blob_ids)
        for digest in parsed.blobs:
            if found[digest][0] not in held:
                raise RegistryError("MANIFEST_BLOB_UNKNOWN", detail={"digest": digest})
    child_ids: list[int] = []
    if parsed.children:
        found_children = {
            digest: (manifest_id, size)
            for digest, manifest_id, size in Manifest.objects.filter(
                repository=repository, digest__in=list(parsed.children)
            ).values_list("digest", "id", "size")
        }
        for digest, size in parsed.children.items():
            if digest not in found_children:
                raise RegistryError("MANIFEST_BLOB_UNKNOWN", detail={"digest": digest})
            if found_children[digest][1] != size:
                raise _invalid("descriptor size does not match the manifest", digest=digest)
            child_ids.append(found_children[digest][0])
        held = hold(Manifest, child_ids)
        for digest in parsed.children:
            if found_children[digest][0] not in held:
                raise RegistryError("MANIFEST_BLOB_UNKNOWN", detail={"digest": digest})
    if parsed.subject:
        hold(
            Manifest,
            Manifest.objects.filter(repository=repository, digest=parsed.subject).values_list(
                "id", flat=True
            ),
        )
    return blob_ids, child_ids


def manifest_put(
    *,
    repository: Repository,
    reference_tag: str | None,
    reference_digest: Digest | None,
    content: bytes,
    content_type: str,
    extra_tags: list[str] | None = None,
) -> tuple[Manifest, list[str]]:
    """Store a manifest, and point the tag (if any) at it; returns it and the tags set."""
    if len(content) > settings.HUB_MANIFEST_MAX_BYTES:
        raise RegistryError(
            "SIZE_INVALID",
            f"manifest is larger than {settings.HUB_MANIFEST_MAX_BYTES} bytes",
            status=413,
        )
    algorithm = reference_digest.algorithm if reference_digest else "sha256"
    digest = f"{algorithm}:{hashlib.new(algorithm, content).hexdigest()}"
    if reference_digest is not None and digest != str(reference_digest):
        raise RegistryError(
            "DIGEST_INVALID", detail={"expected": str(reference_digest), "computed": digest}
        )
    tags = [reference_tag] if reference_tag else []
    for tag in extra_tags or []:
        if not TAG_RE.match(tag):
            raise _invalid("invalid tag", tag=tag[:200])
        tags.append(tag)
    parsed = parse_manifest(content, content_type)
    with transaction.atomic():
        blob_ids, child_ids = _check_references(repository, parsed)
        manifest, created = _manifest_record(repository, digest, parsed, content)
        if created:
            manifest.blobs.add(*blob_ids)
            ManifestChild.objects.bulk_create(
                [ManifestChild(parent=manifest, child_id=cid) for cid in child_ids]
            )
        previous = dict(
            Tag.objects.select_for_update(of=("self",))
            .filter(repository=repository, name__in=tags)
            .values_list("name", "manifest__digest")
        )
        moving = [tag for tag in tags if previous.get(tag) not in (None, digest)]
        rules.check_tags_may_change(repository, moving, "moved")
        rules.check_room(repository, incoming=0)
        for tag in tags:
            Tag.objects.update_or_create(
                repository=repository, name=tag, defaults={"manifest": manifest}
            )
        _record_push(repository, manifest, tags, previous, created)
    return manifest, tags


def _manifest_record(
    repository: Repository, digest: str, parsed: ParsedManifest, content: bytes
) -> tuple[Manifest, bool]:
    """The manifest row (made if new), held until commit so a collection cannot take it
    from under the tags about to point at it; one it deleted meanwhile is made again."""
    for _ in range(3):
        manifest, created = Manifest.objects.get_or_create(
            repository=repository,
            digest=digest,
            defaults={
                "media_type": parsed.media_type,
                "artifact_type": parsed.artifact_type,
                "subject_digest": parsed.subject,
                "annotations": parsed.annotations,
                "size": len(content),
                "content": content,
            },
        )
        if created or hold(Manifest, [manifest.pk]):
            return manifest, created
    raise RegistryError("UNSUPPORTED", "the manifest is busy; try again", status=409)


def _record_push(
    repository: Repository,
    manifest: Manifest,
    tags: list[str],
    previous: dict[str, str],
    created: bool,
) -> None:
    audit.record(
        action="manifest.push",
        repository=repository.name,
        tag=tags[0] if tags else None,
        digest=manifest.digest,
        details={
            "tags": tags,
            "previous": {tag: previous.get(tag) for tag in tags},
            "created": created,
            "media_type": manifest.media_type,
            "size": manifest.size,
        },
    )
    for tag in tags:
        if previous.get(tag) and previous[tag] != manifest.digest:
            audit.record(
                action="tag.move",
                repository=repository.name,
                tag=tag,
                digest=manifest.digest,
                details={"previous_digest": previous[tag]},
            )
    webhooks.notify(
        event="push",
        repository=repository.name,
        tag=tags[0] if tags else None,
        digest=manifest.digest,
        media_type=manifest.media_type,
        extra={"tags": tags, "size": manifest.size},
    )


def manifest_delete(*, repository: Repository, tag: str | None, digest: Digest | None) -> bool:
    with transaction.atomic():
        if tag is not None:
            tags = Tag.objects.filter(repository=repository, name=tag)
            if tags.exists():
                rules.check_tags_may_change(repository, [tag], "deleted")
            pointed = tags.values_list("manifest__digest", flat=True).first()
            deleted, _ = tags.delete()
            if deleted:
                audit.record(
                    action="tag.delete", repository=repository.name, tag=tag, digest=pointed
                )
                webhooks.notify(
                    event="tag_delete", repository=repository.name, tag=tag, digest=pointed
                )
        else:
            _check_no_parents(repository, str(digest))
            manifests = Manifest.objects.filter(repository=repository, digest=str(digest))
            untagged = list(
                Tag.objects.filter(repository=repository, manifest__digest=str(digest))
                .order_by("name")
                .values_list("name", flat=True)
            )
            rules.check_tags_may_change(repository, untagged, "deleted")
            deleted, _ = manifests.delete()
            if deleted:
                audit.record(
                    action="manifest.delete",
                    repository=repository.name,
                    digest=str(digest),
                    details={"tags": untagged},
                )
                for name in untagged:
                    webhooks.notify(
                        event="tag_delete", repository=repository.name, tag=name, digest=str(digest)
                    )
    return bool(deleted)


def _check_no_parents(repository: Repository, digest: str) -> None:
    """An index that names the manifest must go first (ManifestChild.child protects it)."""
    parents = list(
        ManifestChild.objects.filter(
            child__repository=repository, child__digest=digest
        ).values_list("parent__digest", flat=True)[:10]
    )
    if parents:
        raise RegistryError(
            "UNSUPPORTED",
            "an index in this repository still names this manifest; delete the index first",
            detail={"digest": digest, "parents": parents},
            status=409,
        )


def referrers(
    *,
    repository_name: str,
    digest: Digest,
    artifact_type: str | None,
    limit: int,
    last: str | None = None,
) -> list[dict[str, Any]]:
    """Descriptors of the manifests whose subject is `digest`, in digest order after `last`."""
    qs = Manifest.objects.filter(repository__name=repository_name, subject_digest=str(digest))
    if artifact_type:
        qs = qs.filter(artifact_type=artifact_type)
    if last:
        qs = qs.filter(digest__gt=last)
    descriptors = []
    rows = qs.order_by("digest").values_list(
        "media_type", "digest", "size", "artifact_type", "annotations"
    )
    for media_type, manifest_digest, size, art_type, notes in rows[:limit]:
        descriptor: dict[str, Any] = {
            "mediaType": media_type,
            "digest": manifest_digest,
            "size": size,
        }
        if art_type:
            descriptor["artifactType"] = art_type
        if notes:
            descriptor["annotations"] = notes
        descriptors.append(descriptor)
    return descriptors

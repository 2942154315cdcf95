"""The spec's grammar for repository names, tags and references."""

from __future__ import annotations

import re

from registry.digests import Digest, DigestError, parse_digest
from registry.errors import RegistryError

_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
NAME_RE = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
TAG_RE = re.compile(r"^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$")
# Full names longer than this are refused (distribution's limit; the spec asks
# registries to take at least 255 characters of host plus name).
NAME_MAX = 255


def check_name(name: str) -> str:
    if len(name) > NAME_MAX or not NAME_RE.match(name):
        raise RegistryError("NAME_INVALID", detail={"name": name[:300]})
    return name


def is_tag(reference: str) -> bool:
    return bool(TAG_RE.match(reference))


def parse_reference(reference: str) -> tuple[str | None, Digest | None]:
    """A manifest reference is a tag or a digest: (tag, None) or (None, digest)."""
    if TAG_RE.match(reference):
        return reference, None
    try:
        return None, parse_digest(reference)
    except DigestError:
        raise RegistryError(
            "MANIFEST_INVALID" if ":" not in reference else "DIGEST_INVALID",
            "invalid tag or digest",
            detail={"reference": reference[:300]},
            status=400,
        ) from None


def check_digest(value: str) -> Digest:
    try:
        return parse_digest(value)
    except DigestError as exc:
        raise RegistryError("DIGEST_INVALID", str(exc), detail={"digest": value[:300]}) from None

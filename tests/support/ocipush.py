"""A small pure-Python OCI push/pull client on `requests`, for end-to-end tests.

It speaks the distribution spec the way real clients do (monolithic POST, chunked
PATCHes with Content-Range, manifest PUT by tag) and checks what it can on the
way, so a test reads as a list of pushes and pulls.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urljoin

import requests

from tests.support.servers import ADMIN_PASSWORD, ADMIN_USER

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
TIMEOUT = 60
# What a Client signs in with unless told otherwise: the test node's site administrator,
# as Basic credentials sent straight to /v2/ (no token dance).
ADMIN_AUTH = (ADMIN_USER, ADMIN_PASSWORD)


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class PushError(AssertionError):
    """The registry answered something other than what the spec says it should."""


def _expect(response: requests.Response, *statuses: int) -> requests.Response:
    if response.status_code not in statuses:
        raise PushError(
            f"{response.request.method} {response.request.url} -> {response.status_code}"
            f" (expected {statuses}): {response.text[:500]}"
        )
    return response


def error_codes(response: requests.Response) -> list[str]:
    """The spec error codes in a response body ([] when there are none)."""
    try:
        return [e["code"] for e in response.json()["errors"]]
    except (ValueError, KeyError, TypeError):
        return []


@dataclass
class Image:
    """A synthetic image: random layers, a config naming them, an OCI manifest."""

    config: bytes
    layers: list[bytes]
    manifest: bytes = b""
    blobs: dict[str, bytes] = field(default_factory=dict)

    @classmethod
    def random(cls, *layer_sizes: int, label: str = "") -> Image:
        return cls.of([os.urandom(size) for size in layer_sizes], label=label)

    @classmethod
    def of(cls, layers: list[bytes], *, label: str = "") -> Image:
        config = json.dumps(
            {
                "architecture": "amd64",
                "os": "linux",
                "config": {"Labels": {"test": label}},
                "rootfs": {"type": "layers", "diff_ids": [sha256(layer) for layer in layers]},
            },
            sort_keys=True,
        ).encode()
        image = cls(config=config, layers=layers)
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": sha256(config), "size": len(config)},
            "layers": [
                {"mediaType": OCI_LAYER, "digest": sha256(layer), "size": len(layer)}
                for layer in layers
            ],
        }
        image.manifest = json.dumps(manifest, indent=2).encode()
        image.blobs = {sha256(b): b for b in [config, *layers]}
        return image

    @property
    def digest(self) -> str:
        return sha256(self.manifest)


class Client:
    """One client of one registry node; `session` keeps connections alive like real clients.

    A new session signs every request in with `auth` (Basic; the site administrator by
    default, `auth=None` for an anonymous client); a given `session` keeps its own.
    """

    def __init__(
        self,
        base_url: str,
        session: requests.Session | None = None,
        *,
        auth: tuple[str, str] | None = ADMIN_AUTH,
    ) -> None:
        self.base = base_url.rstrip("/")
        if session is None:
            session = requests.Session()
            session.auth = auth
        self.http = session

    def url(self, path_or_location: str) -> str:
        return urljoin(self.base + "/", path_or_location)

    # --- blobs ------------------------------------------------------------------------------

    def push_blob_monolithic(self, repo: str, data: bytes) -> str:
        digest = sha256(data)
        r = self.http.post(
            self.url(f"/v2/{repo}/blobs/uploads/"),
            params={"digest": digest},
            data=data,
            headers={"Content-Type": "application/octet-stream"},
            timeout=TIMEOUT,
        )
        _expect(r, 201)
        if r.headers.get("Docker-Content-Digest") != digest:
            raise PushError(f"201 for {digest} named {r.headers.get('Docker-Content-Digest')}")
        return digest

    def start_upload(self, repo: str) -> str:
        r = _expect(self.http.post(self.url(f"/v2/{repo}/blobs/uploads/"), timeout=TIMEOUT), 202)
        return self.url(r.headers["Location"])

    def patch(
        self, location: str, chunk: bytes | Iterable[bytes], start: int | None, length: int = 0
    ) -> requests.Response:
        """PATCH a chunk; with `start`, a Content-Range (of `length` bytes for a stream)."""
        headers = {"Content-Type": "application/octet-stream"}
        if start is not None:
            size = len(chunk) if isinstance(chunk, bytes) else length
            headers["Content-Range"] = f"{start}-{start + size - 1}"
        return self.http.patch(location, data=chunk, headers=headers, timeout=TIMEOUT)

    def finish(self, location: str, digest: str, last: bytes | None = None) -> requests.Response:
        headers = {"Content-Type": "application/octet-stream"}
        return self.http.put(
            location, params={"digest": digest}, data=last or b"", headers=headers, timeout=TIMEOUT
        )

    def push_blob_chunked(self, repo: str, data: bytes, chunk_size: int) -> str:
        digest = sha256(data)
        location = self.start_upload(repo)
        offset = 0
        while offset < len(data):
            chunk = data[offset : offset + chunk_size]
            r = _expect(self.patch(location, chunk, offset), 202)
            if r.headers.get("Range") != f"0-{offset + len(chunk) - 1}":
                raise PushError(f"after {offset + len(chunk)} bytes Range is {r.headers['Range']}")
            location = self.url(r.headers["Location"])
            offset += len(chunk)
        r = _expect(self.finish(location, digest), 201)
        if r.headers.get("Docker-Content-Digest") != digest:
            raise PushError(f"201 for {digest} named {r.headers.get('Docker-Content-Digest')}")
        return digest

    def get_blob(self, repo: str, digest: str) -> bytes:
        r = _expect(self.http.get(self.url(f"/v2/{repo}/blobs/{digest}"), timeout=TIMEOUT), 200)
        return r.content

    # --- manifests --------------------------------------------------------------------------

    def put_manifest(
        self, repo: str, reference: str, manifest: bytes, media_type: str = OCI_MANIFEST
    ) -> str:
        r = self.http.put(
            self.url(f"/v2/{repo}/manifests/{reference}"),
            data=manifest,
            headers={"Content-Type": media_type},
            timeout=TIMEOUT,
        )
        _expect(r, 201)
        digest = r.headers.get("Docker-Content-Digest")
        if digest != sha256(manifest):
            raise PushError(f"manifest {sha256(manifest)} stored as {digest}")
        return digest

    def get_manifest(self, repo: str, reference: str) -> tuple[bytes, str, str]:
        """(bytes, Docker-Content-Digest, Content-Type)."""
        r = self.http.get(
            self.url(f"/v2/{repo}/manifests/{reference}"),
            headers={"Accept": OCI_MANIFEST},
            timeout=TIMEOUT,
        )
        _expect(r, 200)
        return r.content, r.headers["Docker-Content-Digest"], r.headers["Content-Type"]

    # --- images -----------------------------------------------------------------------------

    def push_image(self, repo: str, tag: str, image: Image, *, chunk_size: int = 0) -> str:
        """Push the config and layers (chunked when `chunk_size`), then the manifest by tag."""
        for data in [image.config, *image.layers]:
            if chunk_size and len(data) > chunk_size:
                self.push_blob_chunked(repo, data, chunk_size)
            else:
                self.push_blob_monolithic(repo, data)
        return self.put_manifest(repo, tag, image.manifest)

    def pull_image(self, repo: str, reference: str) -> Image:
        """Pull by tag or digest, checking every digest against the bytes received."""
        manifest, digest, _ = self.get_manifest(repo, reference)
        if digest != sha256(manifest):
            raise PushError(f"manifest body hashes to {sha256(manifest)}, header says {digest}")
        doc = json.loads(manifest)
        config = self.get_blob(repo, doc["config"]["digest"])
        layers = [self.get_blob(repo, layer["digest"]) for layer in doc["layers"]]
        for descriptor, data in zip(
            [doc["config"], *doc["layers"]], [config, *layers], strict=True
        ):
            if sha256(data) != descriptor["digest"] or len(data) != descriptor["size"]:
                raise PushError(f"blob {descriptor['digest']} came back different")
        image = Image(config=config, layers=layers, manifest=manifest)
        image.blobs = {sha256(b): b for b in [config, *layers]}
        return image

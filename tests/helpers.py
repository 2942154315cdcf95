"""Small helpers to drive the /v2/ API through the Django test client."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from django.http import HttpResponseBase
from django.test import Client

from registry import mediatypes as mt

OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
ERROR_CODE_RE = re.compile(r"^[A-Z_]+$")


def digest_of(data: bytes, algorithm: str = "sha256") -> str:
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


def body(response: HttpResponseBase) -> bytes:
    """The whole body of a plain, streaming or file response."""
    if getattr(response, "streaming", False):
        # The test client closes the response once its content is consumed.
        return b"".join(response.streaming_content)  # type: ignore[attr-defined]
    return response.content  # type: ignore[attr-defined]


def assert_error(
    response: HttpResponseBase, status: int, code: str | None = None
) -> dict[str, Any]:
    """The response is the spec's error JSON with this status (and code); returns the error."""
    assert response.status_code == status, (response.status_code, body(response)[:500])
    assert response["Content-Type"].startswith("application/json")
    doc = json.loads(body(response))
    assert isinstance(doc, dict) and set(doc) == {"errors"}, doc
    assert isinstance(doc["errors"], list) and doc["errors"], doc
    for error in doc["errors"]:
        assert isinstance(error, dict), doc
        assert isinstance(error.get("code"), str) and ERROR_CODE_RE.match(error["code"]), doc
        assert isinstance(error.get("message", ""), str), doc
        assert set(error) <= {"code", "message", "detail"}, doc
    if code is not None:
        assert doc["errors"][0]["code"] == code, doc
    return doc["errors"][0]


def is_spec_error(response: HttpResponseBase) -> bool:
    try:
        assert_error(response, response.status_code)
    except (AssertionError, ValueError):
        return False
    return True


def push_blob(client: Client, name: str, data: bytes, algorithm: str = "sha256") -> str:
    """Monolithic POST ?digest=; returns the digest."""
    digest = digest_of(data, algorithm)
    response = client.post(
        f"/v2/{name}/blobs/uploads/?digest={digest}", data, content_type="application/octet-stream"
    )
    assert response.status_code == 201, body(response)
    return digest


def start_upload(client: Client, name: str) -> str:
    """POST an empty session; returns its Location."""
    response = client.post(
        f"/v2/{name}/blobs/uploads/", b"", content_type="application/octet-stream"
    )
    assert response.status_code == 202, body(response)
    return response["Location"]


def patch_chunk(
    client: Client, location: str, data: bytes, content_range: str | None = None
) -> HttpResponseBase:
    headers = {"Content-Range": content_range} if content_range is not None else {}
    return client.patch(location, data, content_type="application/octet-stream", headers=headers)


def with_query(location: str, **params: str) -> str:
    from urllib.parse import urlencode

    return f"{location}{'&' if '?' in location else '?'}{urlencode(params)}"


def descriptor(data: bytes, media_type: str, **extra: Any) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": digest_of(data), "size": len(data), **extra}


def image_manifest(
    client: Client,
    name: str,
    *,
    media_type: str = mt.OCI_MANIFEST,
    config: bytes = b"{}",
    config_type: str | None = None,
    layers: tuple[bytes, ...] = (b"layer",),
    artifact_type: str | None = None,
    subject: dict[str, Any] | None = None,
    annotations: dict[str, str] | None = None,
    push_blobs: bool = True,
) -> bytes:
    """The JSON bytes of an image manifest whose blobs are pushed to `name` first."""
    docker = media_type == mt.DOCKER_MANIFEST
    if push_blobs:
        for blob in (config, *layers):
            push_blob(client, name, blob)
    doc: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": descriptor(config, config_type or (DOCKER_CONFIG if docker else OCI_CONFIG)),
        "layers": [descriptor(layer, DOCKER_LAYER if docker else OCI_LAYER) for layer in layers],
    }
    if artifact_type is not None:
        doc["artifactType"] = artifact_type
    if subject is not None:
        doc["subject"] = subject
    if annotations is not None:
        doc["annotations"] = annotations
    return json.dumps(doc).encode()


def index_manifest(
    children: list[tuple[bytes, str]],
    *,
    media_type: str = mt.OCI_INDEX,
    subject: dict[str, Any] | None = None,
    annotations: dict[str, str] | None = None,
    artifact_type: str | None = None,
) -> bytes:
    doc: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "manifests": [descriptor(content, child_type) for content, child_type in children],
    }
    if subject is not None:
        doc["subject"] = subject
    if annotations is not None:
        doc["annotations"] = annotations
    if artifact_type is not None:
        doc["artifactType"] = artifact_type
    return json.dumps(doc).encode()


def put_manifest(
    client: Client, name: str, reference: str, content: bytes, media_type: str = mt.OCI_MANIFEST
) -> HttpResponseBase:
    return client.put(f"/v2/{name}/manifests/{reference}", content, content_type=media_type)


def push_image(
    client: Client, name: str, reference: str = "latest", **kwargs: Any
) -> tuple[bytes, str]:
    """Push blobs and an image manifest; returns (manifest bytes, digest)."""
    media_type = kwargs.get("media_type", mt.OCI_MANIFEST)
    content = image_manifest(client, name, **kwargs)
    response = put_manifest(client, name, reference, content, media_type)
    assert response.status_code == 201, body(response)
    return content, digest_of(content)


class ChunkedInput:
    """A wsgi.input that ends at EOF and hands out at most `piece` bytes per read, as a
    server's un-chunking reader does (Django's FakePayload refuses reads past its size)."""

    def __init__(self, data: bytes, piece: int = 7) -> None:
        self._data = data
        self._pos = 0
        self._piece = piece
        self.reads = 0

    def read(self, size: int = -1) -> bytes:
        self.reads += 1
        n = self._piece if size is None or size < 0 else min(size, self._piece)
        chunk = self._data[self._pos : self._pos + n]
        self._pos += len(chunk)
        return chunk

    def readline(self, size: int = -1) -> bytes:
        return self.read(size)


class ChunkedClient(Client):
    """A test client that sends `Transfer-Encoding: chunked` bodies: no CONTENT_LENGTH,
    and a wsgi.input that reads until it ends."""

    def send_chunked(
        self, method: str, path: str, data: bytes, piece: int = 7, **extra: Any
    ) -> tuple[HttpResponseBase, ChunkedInput]:
        stream = ChunkedInput(data, piece)
        response = self.generic(
            method,
            path,
            b"",
            content_type="application/octet-stream",
            HTTP_TRANSFER_ENCODING="chunked",
            **{"wsgi.input": stream},
            **extra,
        )
        return response, stream

    def _base_environ(self, **request: Any) -> dict[str, Any]:
        environ = super()._base_environ(**request)
        if "chunked" in environ.get("HTTP_TRANSFER_ENCODING", ""):
            environ.pop("CONTENT_LENGTH", None)
        return environ


_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')


class BearerClient(Client):
    """A test client that signs in as docker does: on a Bearer challenge it asks
    /auth/token (Basic credentials) for every scope challenged so far, keeps the one token
    that holds them all, and sends the request again once with it."""

    def __init__(self, username: str, secret: str, **defaults: Any) -> None:
        super().__init__(**defaults)
        self._credentials = (username, secret)
        self._scopes: list[str] = []
        self.token: str | None = None
        self.token_requests = 0
        # docker pings /v2/ first: its challenge is what makes it sign in at all (the
        # catalog, say, answers anonymous callers without one).
        assert self.get("/v2/").status_code == 200

    def _fetch_token(self) -> str:
        from django.conf import settings

        from tests.conftest import basic_auth

        response = Client(HTTP_AUTHORIZATION=basic_auth(*self._credentials)).get(
            "/auth/token", {"service": settings.HUB_TOKEN_SERVICE, "scope": self._scopes}
        )
        assert response.status_code == 200, body(response)
        self.token_requests += 1
        return str(json.loads(response.content)["token"])

    def generic(  # type: ignore[override]
        self, method: str, path: str, data: Any = "", *args: Any, **extra: Any
    ) -> HttpResponseBase:
        def send() -> HttpResponseBase:
            auth = {"HTTP_AUTHORIZATION": f"Bearer {self.token}"} if self.token else {}
            return super(BearerClient, self).generic(method, path, data, *args, **auth, **extra)

        response = send()
        challenge = response.get("WWW-Authenticate", "")
        if response.status_code != 401 or not challenge.startswith("Bearer "):
            return response
        scope = dict(_CHALLENGE_PARAM.findall(challenge)).get("scope")
        if self.token is not None and (scope is None or scope in self._scopes):
            return response  # the token holds all it could get: a refusal
        if scope is not None:
            self._scopes.append(scope)
        self.token = self._fetch_token()
        return send()

"""The Docker engine (Debian's dockerd, driven through the Docker SDK) pushing to and pulling
from Hub, and running what it pulled."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.e2e.clients import RecordingProxy
from tests.e2e.conftest import PODMAN_CREDS, Dockerd, Hub, busybox_context, unique
from tests.e2e.images import DOCKER_MANIFEST, OCI_MANIFEST, sha256
from tests.support.servers import ROBOT_SECRET, ROBOT_USER

pytestmark = pytest.mark.e2e

ACCEPT = {"Accept": f"{DOCKER_MANIFEST}, {OCI_MANIFEST}"}
BUSYBOX = Path("/bin/busybox")


def _layer_files(blob: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob))) as tar:
        return {
            member.name.lstrip("./"): tar.extractfile(member).read()  # type: ignore[union-attr]
            for member in tar.getmembers()
            if member.isfile()
        }


@pytest.fixture
def docker_login(dockerd: Dockerd) -> Iterator[Callable[[str], object]]:
    """A client of the session's dockerd signed in to a registry as the site administrator.

    `docker login` has the engine check the credentials itself (the /v2/ challenge, then
    the token endpoint); pushes and pulls then send them along for the engine's own bearer
    dance. Each test gets its own client, so its login ends with it.
    """
    import docker

    clients = []

    def login(registry: str) -> object:
        client = docker.DockerClient(base_url=f"unix://{dockerd.socket}", timeout=300)
        clients.append(client)
        answer = client.login(username=ROBOT_USER, password=ROBOT_SECRET, registry=registry)
        assert answer.get("Status") == "Login Succeeded", answer
        return client

    yield login
    for client in clients:
        client.close()


def _push(client, repository: str, tag: str) -> str:
    """docker push; returns the manifest digest the engine reports."""
    events = list(client.images.push(repository, tag=tag, stream=True, decode=True))
    errors = [e for e in events if "error" in e or "errorDetail" in e]
    assert not errors, errors
    digests = [e["aux"]["Digest"] for e in events if "aux" in e and "Digest" in e["aux"]]
    assert len(digests) == 1, events
    return digests[0]


def _run(client, image: str, *command: str) -> bytes:
    return client.containers.run(image, list(command), network_mode="none", remove=True)


def test_build_push_pull_run(
    hub: Hub, docker_login, recording_proxy: RecordingProxy, tmp_path: Path
) -> None:
    import docker

    client = docker_login(recording_proxy.host)
    nonce = uuid.uuid4().hex
    context = busybox_context(tmp_path / "ctx", nonce)
    repo = unique("docker")
    repository = f"{recording_proxy.host}/{repo}"
    ref = f"{repository}:v1"
    image, _ = client.images.build(  # type: ignore[attr-defined]
        path=str(context), dockerfile="Containerfile", tag=ref, rm=True, network_mode="none"
    )
    assert _run(client, ref, "/bin/busybox", "cat", "/nonce.txt") == f"{nonce}\n".encode()

    digest = _push(client, repository, "v1")

    # Docker sent every blob as one PATCH with `Transfer-Encoding: chunked` and no
    # Content-Length, and Hub took each one (202), then the closing PUT (201).
    patches = [
        r
        for r in recording_proxy.requests()
        if r.method == "PATCH" and r.target.startswith(f"/v2/{repo}/blobs/uploads/")
    ]
    assert len(patches) >= 2  # the two layers (the config may go the same way)
    for request in patches:
        assert request.headers.get("transfer-encoding", "").lower() == "chunked", request
        assert "content-length" not in request.headers, request
    assert {m["status"] for m in hub.access_log(rf"^PATCH /v2/{repo}/blobs/uploads/")} == {"202"}
    assert {m["status"] for m in hub.access_log(rf"^PUT /v2/{repo}/blobs/uploads/")} == {"201"}

    # What Hub holds is what docker built: the manifest docker reports, busybox byte for byte.
    response = hub.get(f"/v2/{repo}/manifests/v1", headers=ACCEPT)
    assert response.status_code == 200
    assert response.headers["Docker-Content-Digest"] == digest == sha256(response.content)
    manifest = json.loads(response.content)
    assert manifest["mediaType"] == DOCKER_MANIFEST
    files: dict[str, bytes] = {}
    for layer in manifest["layers"]:
        blob = hub.get(f"/v2/{repo}/blobs/{layer['digest']}").content
        assert sha256(blob) == layer["digest"]
        assert len(blob) == layer["size"]
        files.update(_layer_files(blob))
    assert files["bin/busybox"] == BUSYBOX.read_bytes()
    assert files["nonce.txt"] == f"{nonce}\n".encode()
    config = hub.get(f"/v2/{repo}/blobs/{manifest['config']['digest']}").content
    assert sha256(config) == image.id  # docker's image id is its config digest

    # Forget it locally, pull it back from Hub, run it.
    client.images.remove(ref, force=True)
    with pytest.raises(docker.errors.ImageNotFound):
        client.images.get(ref)
    pulled = client.images.pull(repository, tag="v1")
    assert pulled.id == image.id
    assert f"{repository}@{digest}" in pulled.attrs["RepoDigests"]
    assert _run(client, ref, "/bin/busybox", "echo", "hello") == b"hello\n"
    assert _run(client, ref, "/bin/busybox", "cat", "/nonce.txt") == f"{nonce}\n".encode()


def test_podman_built_image_runs_under_docker(
    hub: Hub, podman, docker_login, tmp_path: Path
) -> None:
    """Built by podman (OCI, chroot isolation), pushed by podman, pulled and run by docker."""
    client = docker_login(hub.host)
    nonce = uuid.uuid4().hex
    context = busybox_context(tmp_path / "ctx", nonce)
    local = f"localhost/e2e-move-{nonce[:8]}:latest"
    podman(
        "build",
        "--isolation=chroot",
        "--format",
        "oci",
        "-f",
        str(context / "Containerfile"),
        "-t",
        local,
        str(context),
    )
    repo = unique("podman-to-docker")
    podman("push", "--tls-verify=false", PODMAN_CREDS, local, f"{hub.host}/{repo}:v1")
    response = hub.get(f"/v2/{repo}/manifests/v1", headers=ACCEPT)
    assert json.loads(response.content)["mediaType"] == OCI_MANIFEST
    digest = response.headers["Docker-Content-Digest"]

    pulled = client.images.pull(f"{hub.host}/{repo}", tag="v1")
    assert f"{hub.host}/{repo}@{digest}" in pulled.attrs["RepoDigests"]
    ref = f"{hub.host}/{repo}:v1"
    assert _run(client, ref, "/bin/busybox", "echo", "hello") == b"hello\n"
    assert _run(client, ref, "/bin/busybox", "cat", "/nonce.txt") == f"{nonce}\n".encode()
    client.images.remove(ref, force=True)

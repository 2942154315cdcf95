"""oras-py: artifacts pushed in chunks, referrers by `subject`, and the referrers API."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import oras.client
import oras.oci
import pytest

from tests.e2e.clients import RecordingProxy
from tests.e2e.conftest import Hub, unique
from tests.e2e.images import OCI_INDEX, OCI_MANIFEST, canonical_json, sha256
from tests.support.servers import ROBOT_SECRET, ROBOT_USER

pytestmark = pytest.mark.e2e

MiB = 1024 * 1024
FILE_TYPE = "application/vnd.e2e.file.v1"
SIGNATURE_TYPE = "application/vnd.e2e.signature.v1+json"
SBOM_TYPE = "application/vnd.e2e.sbom.v1+json"
NOTE_TYPE = "application/vnd.e2e.note.v1"
EMPTY_TYPE = "application/vnd.oci.empty.v1+json"


@pytest.fixture(scope="module")
def oras_client(recording_proxy: RecordingProxy) -> oras.client.OrasClient:
    """oras-py talking plain HTTP to Hub, through the recording proxy, signed in as the site
    administrator: its requests session sends Basic credentials with every request.

    Neither of oras-py's own ways to sign in can push to Hub: the token backend keeps
    the first bearer token it gets (pull only, for the blob HEAD that starts a push) and
    Hub refuses the upload POST with 403 and no challenge to ask for more; the basic
    backend sends every request anonymously first, and after a 401 to a PATCH whose body
    Hub did not read, the server at times drops the connection before the retry.
    """
    client = oras.client.OrasClient(
        hostname=recording_proxy.host, insecure=True, auth_backend="basic"
    )
    client.auth.set_basic_auth(ROBOT_USER, ROBOT_SECRET)
    client.session.auth = (ROBOT_USER, ROBOT_SECRET)
    return client


@pytest.fixture
def workdir(tmp_path: Path) -> Iterator[Path]:
    # oras-py names layers after the file and wants relative paths: work inside tmp_path.
    old = Path.cwd()
    os.chdir(tmp_path)
    try:
        yield tmp_path
    finally:
        os.chdir(old)


def _push(client: oras.client.OrasClient, target: str, files: list[str], **kwargs: object) -> str:
    response = client.push(target=target, files=files, quiet=True, **kwargs)
    assert response.status_code == 201, response.text
    return response.headers["Docker-Content-Digest"]


def test_chunked_push_and_pull(
    hub: Hub, oras_client, recording_proxy: RecordingProxy, workdir: Path
) -> None:
    payload = os.urandom(2 * MiB + 12345)
    (workdir / "payload.bin").write_bytes(payload)
    repo = unique("oras")
    target = f"{recording_proxy.host}/{repo}:v1"

    digest = _push(
        oras_client, target, [f"payload.bin:{FILE_TYPE}"], do_chunked=True, chunk_size=MiB
    )

    # oras-py sent three PATCHes with `Content-Range: start-end` (no `bytes=`), then a PUT.
    patches = [
        r for r in recording_proxy.requests() if r.method == "PATCH" and f"/v2/{repo}/" in r.target
    ]
    ranges = [r.headers.get("content-range") for r in patches]
    assert ranges[:3] == ["0-1048575", "1048576-2097151", f"2097152-{len(payload) - 1}"]
    assert [r.headers.get("content-length") for r in patches[:3]] == [
        str(MiB),
        str(MiB),
        str(len(payload) - 2 * MiB),
    ]
    assert [m["status"] for m in hub.access_log(rf"^PATCH /v2/{repo}/blobs/uploads/")][:3] == [
        "202"
    ] * 3

    manifest_response = hub.get(f"/v2/{repo}/manifests/v1", headers={"Accept": OCI_MANIFEST})
    assert manifest_response.headers["Docker-Content-Digest"] == digest
    assert sha256(manifest_response.content) == digest
    layer = json.loads(manifest_response.content)["layers"][0]
    assert layer["mediaType"] == FILE_TYPE
    assert layer["digest"] == sha256(payload)
    assert layer["size"] == len(payload)
    assert hub.get(f"/v2/{repo}/blobs/{layer['digest']}").content == payload

    out = workdir / "out"
    pulled = oras_client.pull(target=target, outdir=str(out))
    assert [Path(p).name for p in pulled] == ["payload.bin"]
    assert (out / "payload.bin").read_bytes() == payload


def test_referrers_by_subject(hub: Hub, oras_client, recording_proxy, workdir: Path) -> None:
    repo = unique("oras-referrers")
    host = recording_proxy.host
    (workdir / "artifact.txt").write_text("the artifact\n")
    subject_digest = _push(oras_client, f"{host}/{repo}:v1", ["artifact.txt"])
    subject_size = len(hub.get(f"/v2/{repo}/manifests/{subject_digest}").content)
    subject = oras.oci.Subject(mediaType=OCI_MANIFEST, digest=subject_digest, size=subject_size)

    referrers = {}
    for name, config_type, extra in (
        ("signature", SIGNATURE_TYPE, {"org.e2e.kind": "signature"}),
        ("sbom", SBOM_TYPE, {"org.e2e.kind": "sbom"}),
    ):
        (workdir / f"{name}.json").write_text(json.dumps({"kind": name}))
        (workdir / f"{name}-config.json").write_text(json.dumps({"config": name}))
        response = oras_client.push(
            target=f"{host}/{repo}:{name}",
            files=[f"{name}.json"],
            manifest_config=f"{name}-config.json:{config_type}",
            manifest_annotations=extra,
            subject=subject,
            quiet=True,
        )
        assert response.status_code == 201, response.text
        # Hub tells the client it processed the subject field.
        assert response.headers.get("OCI-Subject") == subject_digest
        referrers[config_type] = response.headers["Docker-Content-Digest"]

    # An OCI 1.1 artifact with an explicit artifactType and the empty config, PUT by digest.
    empty = b"{}"
    put_blob = hub.post(f"/v2/{repo}/blobs/uploads/?digest={sha256(empty)}", data=empty)
    assert put_blob.status_code == 201
    note = canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": NOTE_TYPE,
            "config": {"mediaType": EMPTY_TYPE, "digest": sha256(empty), "size": 2},
            "layers": [{"mediaType": EMPTY_TYPE, "digest": sha256(empty), "size": 2}],
            "subject": {"mediaType": OCI_MANIFEST, "digest": subject_digest, "size": subject_size},
        }
    )
    put_note = hub.put(
        f"/v2/{repo}/manifests/{sha256(note)}",
        data=note,
        headers={"Content-Type": OCI_MANIFEST},
    )
    assert put_note.status_code == 201, put_note.text
    assert put_note.headers["OCI-Subject"] == subject_digest
    referrers[NOTE_TYPE] = sha256(note)

    # Unfiltered: every referrer, typed and annotated, and no filter announced.
    response = hub.get(f"/v2/{repo}/referrers/{subject_digest}")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == OCI_INDEX
    assert "OCI-Filters-Applied" not in response.headers
    index = response.json()
    assert index["schemaVersion"] == 2
    assert index["mediaType"] == OCI_INDEX
    found = {d["artifactType"]: d for d in index["manifests"]}
    assert {t: d["digest"] for t, d in found.items()} == referrers
    for descriptor in index["manifests"]:
        assert descriptor["mediaType"] == OCI_MANIFEST
        content = hub.get(f"/v2/{repo}/manifests/{descriptor['digest']}").content
        assert descriptor["size"] == len(content)
        assert json.loads(content)["subject"]["digest"] == subject_digest
    assert found[SIGNATURE_TYPE]["annotations"] == {"org.e2e.kind": "signature"}
    assert found[SBOM_TYPE]["annotations"] == {"org.e2e.kind": "sbom"}

    # Filtered by artifactType: only matching referrers, and the filter is announced.
    filtered = hub.get(f"/v2/{repo}/referrers/{subject_digest}", params={"artifactType": SBOM_TYPE})
    assert filtered.status_code == 200
    assert filtered.headers["OCI-Filters-Applied"] == "artifactType"
    assert [d["digest"] for d in filtered.json()["manifests"]] == [referrers[SBOM_TYPE]]
    none = hub.get(
        f"/v2/{repo}/referrers/{subject_digest}", params={"artifactType": "application/x-none"}
    )
    assert none.status_code == 200
    assert none.json()["manifests"] == []

    # A digest nothing refers to has an empty (not missing) list of referrers.
    lonely = hub.get(f"/v2/{repo}/referrers/{referrers[SBOM_TYPE]}")
    assert lonely.status_code == 200
    assert lonely.json() == {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}

    # oras-py reads the referrer back by tag: the subject is intact.
    pulled = oras_client.get_manifest(f"{host}/{repo}:signature")
    assert pulled["subject"] == {
        "mediaType": OCI_MANIFEST,
        "digest": subject_digest,
        "size": subject_size,
    }

"""PUT, GET, HEAD and DELETE of manifests, by tag and by digest."""

from __future__ import annotations

import json

import pytest

from registry import mediatypes as mt
from registry.models import Manifest, Tag
from tests.helpers import (
    assert_error,
    digest_of,
    image_manifest,
    index_manifest,
    push_blob,
    push_image,
    put_manifest,
)

pytestmark = pytest.mark.django_db

NAME = "library/manifests"


def _check_served(client, name: str, reference: str, content: bytes, media_type: str) -> None:
    digest = digest_of(content)
    response = client.get(f"/v2/{name}/manifests/{reference}", headers={"Accept": media_type})
    assert response.status_code == 200
    assert response.content == content
    assert response["Content-Type"] == media_type
    assert response["Docker-Content-Digest"] == digest
    assert response["Content-Length"] == str(len(content))
    response = client.head(f"/v2/{name}/manifests/{reference}")
    assert response.status_code == 200
    assert response.content == b""
    assert response["Content-Type"] == media_type
    assert response["Docker-Content-Digest"] == digest
    assert response["Content-Length"] == str(len(content))


@pytest.mark.parametrize("media_type", [mt.OCI_MANIFEST, mt.DOCKER_MANIFEST])
def test_it_stores_an_image_manifest_by_tag(client, media_type: str) -> None:
    content = image_manifest(client, NAME, media_type=media_type, layers=(b"a", b"b"))
    response = put_manifest(client, NAME, "v1", content, media_type)
    assert response.status_code == 201
    digest = digest_of(content)
    assert response["Docker-Content-Digest"] == digest
    assert response["Location"] == f"/v2/{NAME}/manifests/{digest}"
    _check_served(client, NAME, "v1", content, media_type)
    _check_served(client, NAME, digest, content, media_type)


@pytest.mark.parametrize(
    ("index_type", "child_type"),
    [(mt.OCI_INDEX, mt.OCI_MANIFEST), (mt.DOCKER_LIST, mt.DOCKER_MANIFEST)],
)
def test_it_stores_an_index(client, index_type: str, child_type: str) -> None:
    children = []
    for arch in ("amd64", "arm64"):
        content = image_manifest(client, NAME, media_type=child_type, config=arch.encode())
        assert (
            put_manifest(client, NAME, digest_of(content), content, child_type).status_code == 201
        )
        children.append((content, child_type))
    index = index_manifest(children, media_type=index_type)
    response = put_manifest(client, NAME, "multi", index, index_type)
    assert response.status_code == 201
    assert response["Docker-Content-Digest"] == digest_of(index)
    _check_served(client, NAME, "multi", index, index_type)
    _check_served(client, NAME, digest_of(index), index, index_type)


def test_it_stores_the_bytes_exactly_as_pushed(client) -> None:
    doc = json.loads(image_manifest(client, NAME))
    content = json.dumps(doc, indent=3).encode() + b"\n\n"
    assert put_manifest(client, NAME, "pretty", content).status_code == 201
    assert client.get(f"/v2/{NAME}/manifests/pretty").content == content


def test_it_takes_a_put_by_digest(client) -> None:
    content = image_manifest(client, NAME)
    digest = digest_of(content)
    response = put_manifest(client, NAME, digest, content)
    assert response.status_code == 201
    assert response["Docker-Content-Digest"] == digest
    assert not Tag.objects.exists()
    _check_served(client, NAME, digest, content, mt.OCI_MANIFEST)


def test_it_takes_a_put_by_sha512_digest(client) -> None:
    content = image_manifest(client, NAME)
    digest = digest_of(content, "sha512")
    response = put_manifest(client, NAME, digest, content)
    assert response.status_code == 201
    assert response["Docker-Content-Digest"] == digest
    _check_served_digest = client.get(f"/v2/{NAME}/manifests/{digest}")
    assert _check_served_digest.content == content


def test_it_refuses_a_put_by_the_wrong_digest(client) -> None:
    content = image_manifest(client, NAME)
    response = put_manifest(client, NAME, digest_of(b"something else"), content)
    assert_error(response, 400, "DIGEST_INVALID")
    assert not Manifest.objects.exists()


def test_it_sets_extra_tags_on_a_put_by_digest(client) -> None:
    content = image_manifest(client, NAME)
    digest = digest_of(content)
    response = client.put(
        f"/v2/{NAME}/manifests/{digest}?tag=one&tag=two", content, content_type=mt.OCI_MANIFEST
    )
    assert response.status_code == 201
    for tag in ("one", "two"):
        assert client.get(f"/v2/{NAME}/manifests/{tag}").content == content
    tags = json.loads(client.get(f"/v2/{NAME}/tags/list").content)["tags"]
    assert tags == ["one", "two"]


def test_it_refuses_an_invalid_extra_tag(client) -> None:
    content = image_manifest(client, NAME)
    response = client.put(
        f"/v2/{NAME}/manifests/{digest_of(content)}?tag=-bad", content, content_type=mt.OCI_MANIFEST
    )
    assert_error(response, 400, "MANIFEST_INVALID")


def test_it_moves_a_tag_to_a_new_manifest(client) -> None:
    first, _ = push_image(client, NAME, "latest", config=b"1")
    second, digest = push_image(client, NAME, "latest", config=b"2")
    response = client.get(f"/v2/{NAME}/manifests/latest")
    assert response.content == second
    assert response["Docker-Content-Digest"] == digest
    assert client.get(f"/v2/{NAME}/manifests/{digest_of(first)}").status_code == 200


def test_it_sends_oci_subject_for_a_manifest_with_a_subject(client) -> None:
    subject_content, subject_digest = push_image(client, NAME, "base")
    subject = {"mediaType": mt.OCI_MANIFEST, "digest": subject_digest, "size": len(subject_content)}
    content = image_manifest(client, NAME, config=b"sig", subject=subject)
    response = put_manifest(client, NAME, digest_of(content), content)
    assert response.status_code == 201
    assert response["OCI-Subject"] == subject_digest


def test_it_takes_a_subject_that_does_not_exist_yet(client) -> None:
    subject_digest = digest_of(b"not pushed yet")
    subject = {"mediaType": mt.OCI_MANIFEST, "digest": subject_digest, "size": 14}
    content = image_manifest(client, NAME, subject=subject)
    response = put_manifest(client, NAME, digest_of(content), content)
    assert response.status_code == 201
    assert response["OCI-Subject"] == subject_digest


def test_it_sends_no_oci_subject_without_a_subject(client) -> None:
    content = image_manifest(client, NAME)
    response = put_manifest(client, NAME, "plain", content)
    assert response.status_code == 201
    assert "OCI-Subject" not in response


@pytest.mark.parametrize("content", [b"", b"{not json", b"\xff\xfe", b"[]", b'"x"', b"null"])
def test_it_refuses_a_manifest_that_is_not_a_json_object(client, content: bytes) -> None:
    assert_error(put_manifest(client, NAME, "bad", content), 400, "MANIFEST_INVALID")


@pytest.mark.parametrize(
    "doc",
    [
        {"schemaVersion": 3, "config": {}, "layers": []},
        {"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST, "layers": []},
        {"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST, "config": {"digest": "x"}, "layers": []},
        {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": {}},
        {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": [1]},
        {"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST, "annotations": {"a": 1}},
    ],
)
def test_it_refuses_a_structurally_invalid_manifest(client, doc: dict) -> None:
    media_type = doc.get("mediaType", mt.OCI_MANIFEST)
    response = put_manifest(client, NAME, "bad", json.dumps(doc).encode(), media_type)
    assert_error(response, 400, "MANIFEST_INVALID")


def test_it_refuses_a_media_type_that_does_not_match_content_type(client) -> None:
    content = image_manifest(client, NAME, media_type=mt.OCI_MANIFEST)
    response = put_manifest(client, NAME, "mismatch", content, mt.DOCKER_MANIFEST)
    assert_error(response, 400, "MANIFEST_INVALID")
    assert not Manifest.objects.exists()


def test_it_ignores_content_type_parameters(client) -> None:
    content = image_manifest(client, NAME)
    response = put_manifest(client, NAME, "params", content, f"{mt.OCI_MANIFEST}; charset=utf-8")
    assert response.status_code == 201


def test_it_refuses_a_manifest_whose_blob_is_missing(client) -> None:
    content = image_manifest(client, NAME, push_blobs=False)
    error = assert_error(
        put_manifest(client, NAME, "missing", content), 404, "MANIFEST_BLOB_UNKNOWN"
    )
    assert error["detail"]["digest"] in {digest_of(b"{}"), digest_of(b"layer")}
    assert not Manifest.objects.exists()


def test_it_refuses_a_manifest_whose_blob_is_in_another_repository(client) -> None:
    content = image_manifest(client, "library/other")
    assert_error(put_manifest(client, NAME, "other", content), 404, "MANIFEST_BLOB_UNKNOWN")


def test_it_refuses_a_descriptor_size_that_does_not_match_the_blob(client) -> None:
    doc = json.loads(image_manifest(client, NAME))
    doc["layers"][0]["size"] += 1
    response = put_manifest(client, NAME, "size", json.dumps(doc).encode())
    assert_error(response, 400, "MANIFEST_INVALID")


def test_it_refuses_an_index_whose_child_is_missing(client) -> None:
    child = image_manifest(client, NAME)
    index = index_manifest([(child, mt.OCI_MANIFEST)])
    response = put_manifest(client, NAME, "index", index, mt.OCI_INDEX)
    error = assert_error(response, 404, "MANIFEST_BLOB_UNKNOWN")
    assert error["detail"] == {"digest": digest_of(child)}


def test_it_refuses_a_manifest_larger_than_the_limit(client, settings) -> None:
    settings.HUB_MANIFEST_MAX_BYTES = 4 * 1024 * 1024
    doc = json.loads(image_manifest(client, NAME))
    doc["annotations"] = {"padding": "x" * (4 * 1024 * 1024)}
    response = put_manifest(client, NAME, "big", json.dumps(doc).encode())
    assert_error(response, 413, "SIZE_INVALID")
    assert not Manifest.objects.exists()


def test_it_takes_a_manifest_of_almost_4_mib(client, settings) -> None:
    settings.HUB_MANIFEST_MAX_BYTES = 4 * 1024 * 1024
    doc = json.loads(image_manifest(client, NAME))
    content = json.dumps(doc).encode()
    doc["annotations"] = {"padding": "x" * (4 * 1024 * 1024 - len(content) - 100)}
    content = json.dumps(doc).encode()
    assert len(content) <= 4 * 1024 * 1024
    assert put_manifest(client, NAME, "big", content).status_code == 201
    assert client.get(f"/v2/{NAME}/manifests/big").content == content


@pytest.mark.parametrize(
    "content_type",
    [
        "application/vnd.docker.distribution.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v1+prettyjws",
        "",
    ],
)
def test_it_refuses_schema_1(client, content_type: str) -> None:
    content = json.dumps(
        {"schemaVersion": 1, "name": NAME, "tag": "old", "fsLayers": [], "history": []}
    ).encode()
    response = client.put(f"/v2/{NAME}/manifests/old", content, content_type=content_type)
    assert_error(response, 415, "UNSUPPORTED")


def test_it_refuses_an_unknown_manifest_media_type(client) -> None:
    content = json.dumps({"schemaVersion": 2, "mediaType": "text/plain"}).encode()
    assert_error(put_manifest(client, NAME, "x", content, "text/plain"), 415, "UNSUPPORTED")


@pytest.mark.parametrize("reference", ["-tag", "a" * 129, "sha256:short", "md5:abc", "ta:g"])
def test_it_refuses_an_invalid_reference(client, reference: str) -> None:
    push_image(client, NAME)
    response = client.get(f"/v2/{NAME}/manifests/{reference}")
    assert_error(response, 400)
    assert client.head(f"/v2/{NAME}/manifests/{reference}").status_code == 400


def test_it_answers_an_unknown_manifest_with_manifest_unknown(client) -> None:
    push_image(client, NAME)
    assert_error(client.get(f"/v2/{NAME}/manifests/nope"), 404, "MANIFEST_UNKNOWN")
    assert_error(client.get(f"/v2/{NAME}/manifests/{digest_of(b'x')}"), 404, "MANIFEST_UNKNOWN")
    response = client.head(f"/v2/{NAME}/manifests/nope")
    assert response.status_code == 404
    assert response.content == b""


def test_it_does_not_serve_a_manifest_through_another_repository(client) -> None:
    _, digest = push_image(client, NAME)
    push_image(client, "library/other", "other", config=b"other")
    assert_error(client.get(f"/v2/library/other/manifests/{digest}"), 404, "MANIFEST_UNKNOWN")
    assert_error(client.get("/v2/library/other/manifests/latest"), 404, "MANIFEST_UNKNOWN")


def test_it_deletes_a_tag_and_keeps_the_manifest(client) -> None:
    _, digest = push_image(client, NAME, "latest")
    response = client.delete(f"/v2/{NAME}/manifests/latest")
    assert response.status_code == 202
    assert_error(client.get(f"/v2/{NAME}/manifests/latest"), 404, "MANIFEST_UNKNOWN")
    assert client.get(f"/v2/{NAME}/manifests/{digest}").status_code == 200
    assert_error(client.delete(f"/v2/{NAME}/manifests/latest"), 404, "MANIFEST_UNKNOWN")


def test_it_deletes_a_manifest_and_its_tags(client) -> None:
    content, digest = push_image(client, NAME, "latest")
    put_manifest(client, NAME, "stable", content)
    response = client.delete(f"/v2/{NAME}/manifests/{digest}")
    assert response.status_code == 202
    for reference in (digest, "latest", "stable"):
        assert_error(client.get(f"/v2/{NAME}/manifests/{reference}"), 404, "MANIFEST_UNKNOWN")
    assert json.loads(client.get(f"/v2/{NAME}/tags/list").content)["tags"] == []
    assert_error(client.delete(f"/v2/{NAME}/manifests/{digest}"), 404, "MANIFEST_UNKNOWN")


def test_it_answers_delete_in_an_unknown_repository_with_404(client) -> None:
    assert_error(client.delete(f"/v2/nobody/manifests/{digest_of(b'x')}"), 404, "NAME_UNKNOWN")


def test_it_refuses_to_delete_a_manifest_an_index_still_names(client) -> None:
    child = image_manifest(client, NAME)
    put_manifest(client, NAME, digest_of(child), child)
    index = index_manifest([(child, mt.OCI_MANIFEST)])
    assert put_manifest(client, NAME, "multi", index, mt.OCI_INDEX).status_code == 201
    error = assert_error(client.delete(f"/v2/{NAME}/manifests/{digest_of(child)}"), 409)
    assert error["detail"]["parents"] == [digest_of(index)]
    assert client.get(f"/v2/{NAME}/manifests/{digest_of(child)}").status_code == 200
    assert client.delete(f"/v2/{NAME}/manifests/{digest_of(index)}").status_code == 202
    assert client.delete(f"/v2/{NAME}/manifests/{digest_of(child)}").status_code == 202


def test_it_takes_a_manifest_without_layers(client) -> None:
    push_blob(client, NAME, b"{}")
    doc = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "artifactType": "application/vnd.example+type",
        "config": {
            "mediaType": "application/vnd.oci.empty.v1+json",
            "digest": digest_of(b"{}"),
            "size": 2,
        },
        "layers": [],
    }
    content = json.dumps(doc).encode()
    assert put_manifest(client, NAME, "artifact", content).status_code == 201


def test_it_takes_a_manifest_without_a_media_type_field(client) -> None:
    doc = json.loads(image_manifest(client, NAME))
    del doc["mediaType"]
    content = json.dumps(doc).encode()
    response = put_manifest(client, NAME, "nomt", content, mt.OCI_MANIFEST)
    assert response.status_code == 201
    assert client.get(f"/v2/{NAME}/manifests/nomt")["Content-Type"] == mt.OCI_MANIFEST

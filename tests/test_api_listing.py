"""tags/list, _catalog and referrers."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlparse

import pytest

from registry import mediatypes as mt
from tests.factories import RepositoryFactory, TagFactory
from tests.helpers import (
    assert_error,
    digest_of,
    image_manifest,
    index_manifest,
    push_image,
    put_manifest,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(params=["basic", "bearer"])
def client_auth(request: pytest.FixtureRequest) -> str:
    """Listing runs with Basic credentials and with bearer tokens (the catalog has its own
    scope)."""
    return str(request.param)


NAME = "library/listing"
TAGS = ["1.0", "1.1", "A", "B", "_x", "a", "b-c", "b_c", "latest", "z"]


@pytest.fixture
def tagged(client) -> list[str]:
    content, _ = push_image(client, NAME, TAGS[0])
    for tag in TAGS[1:]:
        assert put_manifest(client, NAME, tag, content).status_code == 201
    return sorted(TAGS)


def _next_link(response) -> str | None:
    link = response.get("Link")
    if link is None:
        return None
    assert link.endswith('>; rel="next"'), link
    return link[1 : link.index(">")]


def test_it_lists_tags_in_ascii_order(client, tagged: list[str]) -> None:
    response = client.get(f"/v2/{NAME}/tags/list")
    assert response.status_code == 200
    assert json.loads(response.content) == {"name": NAME, "tags": tagged}
    assert "Link" not in response


def test_it_lists_an_empty_tag_list(client) -> None:
    content = image_manifest(client, NAME)
    put_manifest(client, NAME, digest_of(content), content)
    response = client.get(f"/v2/{NAME}/tags/list")
    assert json.loads(response.content) == {"name": NAME, "tags": []}


def test_it_pages_tags_with_n_last_and_link(client, tagged: list[str]) -> None:
    seen: list[str] = []
    url: str | None = f"/v2/{NAME}/tags/list?n=3"
    pages = 0
    while url is not None:
        response = client.get(url)
        assert response.status_code == 200
        page = json.loads(response.content)["tags"]
        assert len(page) == 3 or _next_link(response) is None
        seen += page
        url = _next_link(response)
        pages += 1
    assert seen == tagged
    assert pages == 4


def test_it_starts_after_last(client, tagged: list[str]) -> None:
    response = client.get(f"/v2/{NAME}/tags/list?last=B")
    assert json.loads(response.content)["tags"] == tagged[tagged.index("B") + 1 :]
    response = client.get(f"/v2/{NAME}/tags/list?n=2&last=b-c")
    assert json.loads(response.content)["tags"] == ["b_c", "latest"]
    assert parse_qs(urlparse(_next_link(response)).query) == {"n": ["2"], "last": ["latest"]}


def test_it_takes_a_last_that_is_not_a_tag(client, tagged: list[str]) -> None:
    response = client.get(f"/v2/{NAME}/tags/list?last=c")
    assert json.loads(response.content)["tags"] == ["latest", "z"]


def test_it_answers_an_empty_page_after_the_last_tag(client, tagged: list[str]) -> None:
    # The repository exists; there is merely nothing after `last`.
    response = client.get(f"/v2/{NAME}/tags/list?last=zz")
    assert response.status_code == 200
    assert json.loads(response.content) == {"name": NAME, "tags": []}
    assert "Link" not in response


def test_it_answers_n_zero_with_an_empty_list_and_no_link(client, tagged: list[str]) -> None:
    response = client.get(f"/v2/{NAME}/tags/list?n=0")
    assert response.status_code == 200
    assert json.loads(response.content) == {"name": NAME, "tags": []}
    assert "Link" not in response


def test_it_caps_tags_at_the_page_size_max(client, settings, tagged: list[str]) -> None:
    settings.HUB_PAGE_SIZE_MAX = 4
    for query in ("", "?n=100"):
        response = client.get(f"/v2/{NAME}/tags/list{query}")
        assert json.loads(response.content)["tags"] == tagged[:4]
        assert parse_qs(urlparse(_next_link(response)).query) == {"n": ["4"], "last": [tagged[3]]}


@pytest.mark.parametrize("n", ["-1", "abc", "1.5", "1e3"])
def test_it_refuses_a_bad_n(client, tagged: list[str], n: str) -> None:
    assert_error(client.get(f"/v2/{NAME}/tags/list?n={n}"), 400)
    assert_error(client.get(f"/v2/_catalog?n={n}"), 400)


def test_it_answers_tags_of_an_unknown_repository_with_name_unknown(client) -> None:
    assert_error(client.get("/v2/library/missing/tags/list"), 404, "NAME_UNKNOWN")


def test_it_lists_many_tags_made_by_factories(client, settings) -> None:
    settings.HUB_PAGE_SIZE_MAX = 50
    repository = RepositoryFactory(name="library/many")
    names = sorted(TagFactory(repository=repository).name for _ in range(60))
    response = client.get("/v2/library/many/tags/list")
    assert json.loads(response.content)["tags"] == names[:50]
    response = client.get(_next_link(response))
    assert json.loads(response.content)["tags"] == names[50:]
    assert "Link" not in response


def test_it_lists_the_catalog(client, settings) -> None:
    names = sorted(RepositoryFactory().name for _ in range(7)) + ["library/zz/last"]
    RepositoryFactory(name="library/zz/last")
    response = client.get("/v2/_catalog")
    assert response.status_code == 200
    assert json.loads(response.content) == {"repositories": names}
    assert "Link" not in response


def test_it_pages_the_catalog(client, settings) -> None:
    names = sorted(RepositoryFactory().name for _ in range(7))
    settings.HUB_PAGE_SIZE_MAX = 3
    seen: list[str] = []
    url: str | None = "/v2/_catalog?n=100"
    while url is not None:
        response = client.get(url)
        page = json.loads(response.content)["repositories"]
        assert len(page) <= 3
        seen += page
        url = _next_link(response)
    assert seen == names
    response = client.get(f"/v2/_catalog?n=2&last={names[2]}")
    assert json.loads(response.content)["repositories"] == names[3:5]
    response = client.get("/v2/_catalog?n=0")
    assert json.loads(response.content) == {"repositories": []}
    assert "Link" not in response


def test_it_gives_no_link_when_the_last_page_is_exactly_full(client) -> None:
    names = sorted(RepositoryFactory().name for _ in range(4))
    response = client.get("/v2/_catalog?n=4")
    assert json.loads(response.content)["repositories"] == names
    assert "Link" not in response


# --- referrers --------------------------------------------------------------------------------


@pytest.fixture
def subject(client) -> dict:
    content, digest = push_image(client, NAME, "base")
    return {"mediaType": mt.OCI_MANIFEST, "digest": digest, "size": len(content)}


def _push_referrer(client, subject: dict, **kwargs) -> tuple[bytes, str]:
    content = image_manifest(client, NAME, subject=subject, **kwargs)
    response = put_manifest(client, NAME, digest_of(content), content)
    assert response.status_code == 201
    return content, digest_of(content)


def _referrers(client, digest: str, query: str = "") -> tuple[object, list[dict]]:
    response = client.get(f"/v2/{NAME}/referrers/{digest}{query}")
    assert response.status_code == 200
    assert response["Content-Type"] == mt.OCI_INDEX
    doc = json.loads(response.content)
    assert doc["schemaVersion"] == 2
    assert doc["mediaType"] == mt.OCI_INDEX
    return response, doc["manifests"]


def test_it_answers_referrers_of_an_unknown_digest_with_an_empty_index(client, subject) -> None:
    _, manifests = _referrers(client, digest_of(b"nothing refers to this"))
    assert manifests == []


def test_it_answers_referrers_in_an_unknown_repository_with_an_empty_index(client) -> None:
    response = client.get(f"/v2/library/missing/referrers/{digest_of(b'x')}")
    assert response.status_code in (200, 404)
    if response.status_code == 200:
        assert json.loads(response.content)["manifests"] == []
    else:
        assert_error(response, 404, "NAME_UNKNOWN")


def test_it_lists_referrers_with_artifact_type_and_annotations(client, subject) -> None:
    sbom, sbom_digest = _push_referrer(
        client,
        subject,
        config=b"sbom",
        artifact_type="application/vnd.example.sbom.v1",
        annotations={"org.example.format": "json"},
    )
    sig, sig_digest = _push_referrer(
        client, subject, config=b"sig", config_type="application/vnd.example.signature.v1"
    )
    response, manifests = _referrers(client, subject["digest"])
    assert "OCI-Filters-Applied" not in response
    by_digest = {m["digest"]: m for m in manifests}
    assert by_digest == {
        sbom_digest: {
            "mediaType": mt.OCI_MANIFEST,
            "digest": sbom_digest,
            "size": len(sbom),
            "artifactType": "application/vnd.example.sbom.v1",
            "annotations": {"org.example.format": "json"},
        },
        sig_digest: {
            "mediaType": mt.OCI_MANIFEST,
            "digest": sig_digest,
            "size": len(sig),
            # No artifactType of its own: the config's mediaType.
            "artifactType": "application/vnd.example.signature.v1",
        },
    }


def test_it_filters_referrers_by_artifact_type(client, subject) -> None:
    _, sbom_digest = _push_referrer(
        client, subject, config=b"sbom", artifact_type="application/vnd.example.sbom.v1"
    )
    _push_referrer(client, subject, config=b"sig", artifact_type="application/vnd.example.sig.v1")
    response, manifests = _referrers(
        client, subject["digest"], "?artifactType=application/vnd.example.sbom.v1"
    )
    assert response["OCI-Filters-Applied"] == "artifactType"
    assert [m["digest"] for m in manifests] == [sbom_digest]
    response, manifests = _referrers(client, subject["digest"], "?artifactType=application/none")
    assert response["OCI-Filters-Applied"] == "artifactType"
    assert manifests == []


def test_it_lists_an_index_referrer_without_artifact_type(client, subject) -> None:
    child = image_manifest(client, NAME, config=b"child")
    put_manifest(client, NAME, digest_of(child), child)
    index = index_manifest([(child, mt.OCI_MANIFEST)], subject=subject, annotations={"k": "v"})
    response = put_manifest(client, NAME, digest_of(index), index, mt.OCI_INDEX)
    assert response.status_code == 201
    assert response["OCI-Subject"] == subject["digest"]
    _, manifests = _referrers(client, subject["digest"])
    assert manifests == [
        {
            "mediaType": mt.OCI_INDEX,
            "digest": digest_of(index),
            "size": len(index),
            "annotations": {"k": "v"},
        }
    ]


def test_it_drops_a_deleted_referrer(client, subject) -> None:
    _, digest = _push_referrer(client, subject, config=b"gone")
    assert client.delete(f"/v2/{NAME}/manifests/{digest}").status_code == 202
    _, manifests = _referrers(client, subject["digest"])
    assert manifests == []


def test_it_keeps_referrers_per_repository(client, subject) -> None:
    _push_referrer(client, subject, config=b"here")
    response = client.get(f"/v2/library/other/referrers/{subject['digest']}")
    if response.status_code == 200:
        assert json.loads(response.content)["manifests"] == []
    else:
        assert_error(response, 404, "NAME_UNKNOWN")


@pytest.mark.parametrize(
    "digest", ["sha256:abc", "nonsense", f"md5:{'0' * 32}", "sha256:" + "G" * 64]
)
def test_it_refuses_an_invalid_referrers_digest(client, subject, digest: str) -> None:
    assert_error(client.get(f"/v2/{NAME}/referrers/{digest}"), 400, "DIGEST_INVALID")


def test_it_pages_referrers_beyond_the_page_size_with_a_link(client, settings, subject) -> None:
    settings.HUB_PAGE_SIZE_MAX = 2
    pushed = {
        _push_referrer(client, subject, config=f"r{i}".encode(), artifact_type="a/b")[1]
        for i in range(5)
    }
    seen: list[str] = []
    url: str | None = f"/v2/{NAME}/referrers/{subject['digest']}?artifactType=a/b"
    while url is not None:
        response = client.get(url)
        assert response.status_code == 200
        assert response["OCI-Filters-Applied"] == "artifactType"
        page = [m["digest"] for m in json.loads(response.content)["manifests"]]
        assert 0 < len(page) <= 2
        seen += page
        url = _next_link(response)
    assert sorted(seen) == sorted(pushed)
    assert len(seen) == 5

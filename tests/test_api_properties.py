"""Property tests: whatever a client sends, Hub never answers 500, and every 4xx is the
spec's error JSON."""

from __future__ import annotations

import json
from urllib.parse import quote, urlencode

import pytest
from django.test import Client
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from registry import mediatypes as mt
from tests.conftest import SpecRobot
from tests.helpers import assert_error, body, digest_of, push_image, start_upload

pytestmark = pytest.mark.django_db

SETTINGS = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
NAME = "library/prop"

# Header values travel as latin-1 on the wire.
header_text = st.text(st.characters(min_codepoint=0, max_codepoint=255), max_size=60)
any_text = st.text(max_size=80)
hexdigits = st.text("0123456789abcdefABCDEF", min_size=0, max_size=140)
digests = st.one_of(
    any_text,
    st.builds(
        lambda a, h: f"{a}:{h}",
        st.sampled_from(["sha256", "sha512", "md5", "SHA256", ""]),
        hexdigits,
    ),
    st.builds(lambda d: digest_of(d), st.binary(max_size=8)),
)
name_parts = st.text("abcXYZ09._-é/", min_size=0, max_size=12)
names = st.one_of(
    any_text,
    st.lists(name_parts, min_size=1, max_size=30).map("/".join),
    # Names in the organisation the client may create repositories in.
    st.lists(name_parts, min_size=1, max_size=6).map(lambda parts: "library/" + "/".join(parts)),
)
integers = st.one_of(st.integers(-5, 10**6), st.integers(-(2**70), 2**70))


@pytest.fixture
def seeded(client) -> dict[str, str]:
    content, digest = push_image(client, NAME, "latest", layers=(b"0123456789" * 10,))
    return {"manifest": digest, "blob": digest_of(b"0123456789" * 10)}


@pytest.fixture
def raw(spec_robot: SpecRobot) -> Client:
    """A client that hands back a 500 instead of raising the view's exception."""
    return Client(raise_request_exception=False, **spec_robot.basic)


def check(response) -> None:
    assert response.status_code < 500, (response.status_code, body(response)[:300])
    if 400 <= response.status_code < 500 and body(response):
        assert_error(response, response.status_code)


def _path(name: str) -> str:
    return quote(name, safe="/")


@SETTINGS
@given(name=names, method=st.sampled_from(["GET", "HEAD", "DELETE", "PUT", "POST", "PATCH"]))
def test_it_survives_any_repository_name(raw, seeded, name: str, method: str) -> None:
    base = f"/v2/{_path(name)}"
    for path in (
        f"{base}/tags/list",
        f"{base}/manifests/latest",
        f"{base}/blobs/{seeded['blob']}",
        f"{base}/blobs/uploads/",
        f"{base}/referrers/{seeded['manifest']}",
    ):
        check(raw.generic(method, path, b"", content_type="application/octet-stream"))
    check(raw.post(f"/v2/library/other/blobs/uploads/?mount={seeded['blob']}&from={quote(name)}"))


@SETTINGS
@given(reference=any_text, method=st.sampled_from(["GET", "HEAD", "DELETE", "PUT"]))
def test_it_survives_any_reference(raw, seeded, reference: str, method: str) -> None:
    path = f"/v2/{NAME}/manifests/{quote(reference, safe='')}"
    check(raw.generic(method, path, b"{}", content_type=mt.OCI_MANIFEST))


@example(digest=digest_of(b"x"), artifact_type="a\x00", last="\x00")
@SETTINGS
@given(
    digest=digests,
    artifact_type=st.one_of(st.none(), any_text),
    last=st.one_of(st.none(), any_text),
)
def test_it_survives_any_digest(raw, seeded, digest: str, artifact_type, last) -> None:
    quoted = quote(digest, safe="")
    for method in ("GET", "HEAD", "DELETE"):
        check(raw.generic(method, f"/v2/{NAME}/blobs/{quoted}"))
    query = {k: v for k, v in (("artifactType", artifact_type), ("last", last)) if v is not None}
    check(raw.get(f"/v2/{NAME}/referrers/{quoted}?{urlencode(query)}"))
    check(
        raw.post(
            f"/v2/{NAME}/blobs/uploads/?{urlencode({'digest': digest})}", b"x", content_type="a/b"
        )
    )
    check(raw.post(f"/v2/{NAME}/blobs/uploads/?{urlencode({'mount': digest, 'from': NAME})}"))
    location = start_upload(raw, NAME)
    check(raw.put(f"{location}?{urlencode({'digest': digest})}", b"abc", content_type="a/b"))
    raw.delete(location)


@SETTINGS
@given(
    value=st.one_of(
        header_text,
        st.builds(
            lambda p, a, b, t: f"{p}{a}-{b}{t}",
            st.sampled_from(["", "bytes=", "bytes ", "items="]),
            integers,
            integers,
            st.sampled_from(["", "/*", "/10", "/x"]),
        ),
    ),
    data=st.binary(max_size=20),
    closing=st.booleans(),
)
def test_it_survives_any_content_range(raw, seeded, value: str, data: bytes, closing: bool) -> None:
    location = start_upload(raw, NAME)
    headers = {"Content-Range": value}
    if closing:
        url = f"{location}?digest={digest_of(data)}"
        check(raw.put(url, data, content_type="application/octet-stream", headers=headers))
    else:
        check(raw.patch(location, data, content_type="application/octet-stream", headers=headers))
    raw.delete(location)


@SETTINGS
@given(
    value=st.one_of(
        header_text,
        st.builds(
            lambda a, b: f"bytes={a}-{b}",
            st.one_of(st.just(""), integers.map(str)),
            st.one_of(st.just(""), integers.map(str)),
        ),
    )
)
def test_it_survives_any_range_header(raw, seeded, value: str) -> None:
    response = raw.get(f"/v2/{NAME}/blobs/{seeded['blob']}", headers={"Range": value})
    check(response)
    if response.status_code == 206:
        first, size = response["Content-Range"].removeprefix("bytes ").split("/")
        start, end = (int(x) for x in first.split("-"))
        assert body(response) == (b"0123456789" * 10)[start : end + 1]
        assert int(size) == 100


@example(n=None, last="\x00")
@example(n="2", last="latest\x00z")
@SETTINGS
@given(
    n=st.one_of(st.none(), any_text, integers.map(str)),
    last=st.one_of(st.none(), any_text),
)
def test_it_survives_any_pagination_query(raw, seeded, n, last) -> None:
    query = urlencode({k: v for k, v in (("n", n), ("last", last)) if v is not None})
    for path in (f"/v2/{NAME}/tags/list", "/v2/_catalog"):
        response = raw.get(f"{path}?{query}")
        check(response)
        if response.status_code == 200:
            doc = json.loads(response.content)
            items = doc.get("tags", doc.get("repositories"))
            assert items == sorted(items)


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), any_text),
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(any_text, children, max_size=4)
    ),
    max_leaves=12,
)
descriptor_like = st.fixed_dictionaries(
    {},
    optional={
        "mediaType": st.one_of(st.sampled_from([*mt.MANIFESTS, "x/y"]), json_values),
        "digest": st.one_of(digests, json_values),
        "size": st.one_of(integers, json_values),
        "urls": json_values,
    },
)
manifest_like = st.fixed_dictionaries(
    {},
    optional={
        "schemaVersion": st.one_of(st.sampled_from([1, 2, "2", 2.0]), json_values),
        "mediaType": st.one_of(st.sampled_from([*mt.MANIFESTS, *mt.DOCKER_SCHEMA1]), json_values),
        "artifactType": st.one_of(any_text, json_values),
        "config": st.one_of(descriptor_like, json_values),
        "layers": st.one_of(st.lists(descriptor_like, max_size=3), json_values),
        "manifests": st.one_of(st.lists(descriptor_like, max_size=3), json_values),
        "subject": st.one_of(descriptor_like, json_values),
        "annotations": st.one_of(st.dictionaries(any_text, any_text, max_size=3), json_values),
    },
)


def _nul_manifest(key: str, value: object) -> bytes:
    doc = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "config": {"mediaType": "a/b", "digest": digest_of(b"{}"), "size": 2},
        "layers": [],
        key: value,
    }
    return json.dumps(doc).encode()


@example(
    content=_nul_manifest("artifactType", "a\x00b"), content_type=mt.OCI_MANIFEST, by_digest=True
)
@example(
    content=_nul_manifest("annotations", {"k": "v\x00"}),
    content_type=mt.OCI_MANIFEST,
    by_digest=False,
)
@example(
    content=_nul_manifest("annotations", {"k\x00": "v"}),
    content_type=mt.OCI_MANIFEST,
    by_digest=False,
)
@SETTINGS
@given(
    content=st.one_of(
        st.binary(max_size=200),
        json_values.map(lambda v: json.dumps(v).encode()),
        manifest_like.map(lambda v: json.dumps(v).encode()),
    ),
    content_type=st.one_of(
        st.sampled_from([*mt.MANIFESTS, *mt.DOCKER_SCHEMA1, "", "application/json"]), header_text
    ),
    by_digest=st.booleans(),
)
def test_it_survives_any_manifest(
    raw, seeded, content: bytes, content_type: str, by_digest
) -> None:
    reference = digest_of(content) if by_digest else "fuzz"
    response = raw.put(f"/v2/{NAME}/manifests/{reference}", content, content_type=content_type)
    check(response)
    if response.status_code == 201:
        fetched = raw.get(f"/v2/{NAME}/manifests/{reference}")
        assert fetched.status_code == 200
        assert fetched.content == content
        assert fetched["Docker-Content-Digest"] == response["Docker-Content-Digest"]

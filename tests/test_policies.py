"""Immutable tags, namespace quotas and tag retention, through the registry and the API."""

from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from audit.models import Event
from registry.models import Blob, Tag, Upload
from tests.helpers import (
    ChunkedClient,
    digest_of,
    image_manifest,
    push_blob,
    push_image,
    put_manifest,
    start_upload,
    with_query,
)
from tests.management_api import as_, basic
from tests.people import PASSWORD, People

pytestmark = pytest.mark.django_db


def _as(who: str, cls: type[Client] = Client) -> Client:
    return cls(HTTP_AUTHORIZATION=basic(who, PASSWORD))


def _error(response: Any) -> dict[str, Any]:
    return json.loads(response.content)["errors"][0]


def _set_policy(client, people, who: str, url: str, policy: dict[str, Any]) -> Any:
    return as_(client, people, who, "PUT", url, policy)


# --- immutable tags ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url", ["/api/orgs/acme/policy/", "/api/repositories/acme/private/policy/"]
)
def test_it_refuses_to_move_or_delete_an_immutable_tag(client, people, url: str) -> None:
    assert _set_policy(client, people, "alice", url, {"immutable_tags": ["v*"]}).status_code == 200
    alice = _as("alice")
    first, digest = push_image(alice, "acme/private", "v1")
    # Pushing the same manifest again is no move.
    assert put_manifest(alice, "acme/private", "v1", first).status_code == 201
    other = image_manifest(alice, "acme/private", layers=(b"another layer",))
    response = put_manifest(alice, "acme/private", "v1", other)
    assert response.status_code == 403
    assert _error(response)["code"] == "DENIED"
    assert "v1 of acme/private is immutable (pattern 'v*')" in _error(response)["message"]
    assert Tag.objects.get(name="v1").manifest.digest == digest
    response = alice.delete("/v2/acme/private/manifests/v1")
    assert response.status_code == 403 and _error(response)["code"] == "DENIED"
    response = alice.delete(f"/v2/acme/private/manifests/{digest}")
    assert response.status_code == 403
    # Tags that match no pattern move and go as ever.
    push_image(alice, "acme/private", "latest")
    assert put_manifest(alice, "acme/private", "latest", other).status_code == 201
    assert alice.delete("/v2/acme/private/manifests/latest").status_code == 202


def test_it_lets_only_administrators_set_policies(client, people) -> None:
    body = {"immutable_tags": ["*"]}
    for who in ("bob", "charlie", "robot"):
        url = "/api/repositories/acme/private/policy/"
        assert _set_policy(client, people, who, url, body).status_code in (403, 404)
        assert _set_policy(client, people, who, "/api/orgs/acme/policy/", body).status_code in (
            403,
            404,
        )
    response = _set_policy(client, people, "alice", "/api/orgs/acme/policy/", body)
    assert response.status_code == 200
    [event] = Event.objects.filter(action="policy.set")
    assert event.details["before"]["immutable_tags"] == []
    assert event.details["after"]["immutable_tags"] == ["*"]
    assert event.organisation == "acme"


def test_it_answers_bad_policies_with_400(client, people) -> None:
    for bad in (
        {"immutable_tags": "v*"},
        {"retention": {"keep_last": -1}},
        {"retention": {"remove_older_than_days": 0}},
    ):
        response = _set_policy(client, people, "alice", "/api/orgs/acme/policy/", bad)
        assert response.status_code == 400, bad


# --- quotas ------------------------------------------------------------------------------------


def _quota(client, people, limit: int | None) -> Any:
    return as_(
        client, people, "admin", "PUT", "/api/namespaces/acme/quota/", {"limit_bytes": limit}
    )


def test_it_refuses_a_blob_over_quota_before_storing_it(client, people) -> None:
    assert _quota(client, people, 1000).status_code == 200
    alice = _as("alice")
    push_blob(alice, "acme/private", b"a" * 600)
    data = b"b" * 600
    response = alice.post(
        f"/v2/acme/private/blobs/uploads/?digest={digest_of(data)}",
        data,
        content_type="application/octet-stream",
    )
    assert response.status_code == 403
    assert _error(response)["code"] == "DENIED"
    assert "over its storage quota: 600 of 1000 bytes used" in _error(response)["message"]
    assert not Blob.objects.filter(digest=digest_of(data)).exists()
    assert not Upload.objects.exists()


def test_it_refuses_a_chunked_blob_over_quota_at_the_end(client, people) -> None:
    _quota(client, people, 500)
    alice = _as("alice", ChunkedClient)
    data = b"c" * 800
    location = start_upload(alice, "acme/private")
    response, _ = alice.send_chunked("PATCH", location, data)
    assert response.status_code == 202
    response = alice.put(with_query(location, digest=digest_of(data)))
    assert response.status_code == 403 and _error(response)["code"] == "DENIED"
    assert not Blob.objects.filter(digest=digest_of(data)).exists()
    assert not Upload.objects.exists()


def test_it_counts_a_blob_once_per_namespace(client, people) -> None:
    alice = _as("alice")
    data = b"d" * 700
    push_blob(alice, "acme/private", data)
    _quota(client, people, 1000)
    # The same bytes in another repository of the namespace cost nothing more.
    push_blob(alice, "acme/public", data)
    usage = as_(client, people, "alice", "GET", "/api/namespaces/acme/quota/").json()
    assert usage == {"namespace": "acme", "limit_bytes": 1000, "used_bytes": 700}


def test_it_refuses_a_manifest_in_a_namespace_over_quota(client, people) -> None:
    alice = _as("alice")
    config, layer = b"{}", b"e" * 900
    push_blob(alice, "acme/private", config)
    push_blob(alice, "acme/private", layer)
    _quota(client, people, 100)  # lowered below what is already there
    content = image_manifest(alice, "acme/private", layers=(layer,), push_blobs=False)
    response = put_manifest(alice, "acme/private", "1.0", content)
    assert response.status_code == 403 and _error(response)["code"] == "DENIED"


def test_it_shows_quotas_only_to_who_may_see_the_namespace(client, people) -> None:
    _quota(client, people, 1000)
    assert as_(client, people, "bob", "GET", "/api/namespaces/acme/quota/").status_code == 200
    assert as_(client, people, "charlie", "GET", "/api/namespaces/acme/quota/").status_code == 404
    assert as_(client, people, "charlie", "GET", "/api/namespaces/alice/quota/").status_code == 404
    # Only site administrators set quotas; owners may not raise their own.
    response = as_(
        client, people, "alice", "PUT", "/api/namespaces/acme/quota/", {"limit_bytes": 10**12}
    )
    assert response.status_code == 403
    [event] = Event.objects.filter(action="quota.set")
    assert event.details == {"namespace": "acme", "before": None, "after": 1000}


# --- retention --------------------------------------------------------------------------------


@pytest.fixture
def aged_tags(people: People) -> list[str]:
    """t0 (newest) ... t5 (oldest), one day apart, and release-1 (oldest of all)."""
    alice = _as("alice")
    content, _ = push_image(alice, "acme/private", "t0")
    names = [f"t{i}" for i in range(6)] + ["release-1"]
    for name in names[1:]:
        put_manifest(alice, "acme/private", name, content)
    now = timezone.now()
    for age, name in enumerate(names):
        Tag.objects.filter(name=name).update(updated_at=now - timedelta(days=age, hours=1))
    return names


PREVIEW = "/api/repositories/acme/private/policy/preview/"


def test_it_previews_what_retention_would_remove(client, people, aged_tags) -> None:
    policy = {"retention": {"keep_last": 2, "keep_patterns": ["release-*"]}}
    response = as_(client, people, "alice", "POST", PREVIEW, policy)
    assert response.status_code == 200
    assert [r["tag"] for r in response.json()["remove"]] == ["t2", "t3", "t4", "t5"]
    policy = {"retention": {"remove_older_than_days": 4}}
    removed = as_(client, people, "alice", "POST", PREVIEW, policy).json()["remove"]
    assert [r["tag"] for r in removed] == ["t4", "t5", "release-1"]
    assert removed[0]["reason"] == "not pushed for 4 days"
    assert Tag.objects.count() == 7  # a preview removes nothing


def test_it_removes_only_when_switched_on_and_spares_immutable_tags(
    client, people, aged_tags
) -> None:
    url = "/api/repositories/acme/private/policy/"
    policy: dict[str, Any] = {"immutable_tags": ["t5"], "retention": {"keep_last": 3}}
    _set_policy(client, people, "alice", url, policy)
    out = StringIO()
    call_command("retention", stdout=out)
    assert "0 tag(s) removed" in out.getvalue()
    out = StringIO()
    call_command("retention", "--dry-run", stdout=out)
    assert "would remove acme/private:t3" in out.getvalue()
    assert Tag.objects.count() == 7
    policy["retention"]["enabled"] = True
    _set_policy(client, people, "alice", url, policy)
    call_command("retention", stdout=StringIO())
    assert sorted(Tag.objects.values_list("name", flat=True)) == ["t0", "t1", "t2", "t5"]
    [event] = Event.objects.filter(action="retention.apply")
    assert [r["tag"] for r in event.details["removed"]] == ["t3", "t4", "release-1"]
    assert Event.objects.filter(action="tag.delete").count() == 3


def test_it_takes_the_organisation_retention_unless_the_repository_has_its_own(
    client, people, aged_tags
) -> None:
    org = {"retention": {"enabled": True, "keep_last": 1}}
    _set_policy(client, people, "alice", "/api/orgs/acme/policy/", org)
    own = {"retention": {"enabled": True, "keep_last": 5}}
    _set_policy(client, people, "alice", "/api/repositories/acme/private/policy/", own)
    call_command("retention", stdout=StringIO())
    assert Tag.objects.count() == 5

"""Garbage collection, in process (tasks eager): what goes, what stays, what is recorded."""

from __future__ import annotations

import io
import json
import os
import threading
from datetime import timedelta
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from audit.models import Event
from registry import mediatypes as mt
from registry.locks import collection_lock
from registry.models import Blob, GcRun, Manifest, Repository, RepositoryBlob
from registry.services import gc
from registry.services.gc import collect
from registry.storage import get_storage
from tests.helpers import (
    descriptor,
    digest_of,
    image_manifest,
    index_manifest,
    push_blob,
    push_image,
    put_manifest,
)

pytestmark = pytest.mark.django_db

NAME = "gc/app"


@pytest.fixture
def hub(registry_auth: dict[str, str]) -> Client:
    """A client signed in as a site administrator."""
    return Client(**registry_auth)


def _policy(name: str, hours: int | None) -> None:
    Repository.objects.filter(name=name).update(untagged_manifest_hours=hours)


def _age(seconds: int) -> None:
    """Everything that exists now happened `seconds` ago."""
    past = timezone.now() - timedelta(seconds=seconds)
    Blob.objects.update(last_referenced_at=past)
    RepositoryBlob.objects.update(created_at=past)
    Manifest.objects.update(created_at=past)


def _blob_there(digest: str) -> bool:
    return Blob.objects.filter(digest=digest).exists() and get_storage().blob_exists(digest)


def _blob_gone(digest: str) -> bool:
    return not Blob.objects.filter(digest=digest).exists() and not get_storage().blob_exists(digest)


def _pull(hub: Client, name: str, reference: str) -> None:
    """Pull the manifest and every blob it names, checking each digest."""
    response = hub.get(f"/v2/{name}/manifests/{reference}", headers={"Accept": mt.OCI_MANIFEST})
    assert response.status_code == 200
    doc = json.loads(response.content)
    for item in [doc["config"], *doc["layers"]]:
        blob = hub.get(f"/v2/{name}/blobs/{item['digest']}")
        assert blob.status_code == 200
        assert digest_of(b"".join(blob.streaming_content)) == item["digest"]  # type: ignore[attr-defined]


# --- blobs -----------------------------------------------------------------------------------


def test_it_removes_blobs_no_manifest_references(hub: Client, storage_backend: str) -> None:
    _, image = push_image(hub, NAME, "v1", config=b'{"a":1}', layers=(b"kept layer",))
    orphan = push_blob(hub, NAME, b"nobody references me")

    report = collect(grace_seconds=0)

    assert report.blobs == [(orphan, len(b"nobody references me"))]
    assert _blob_gone(orphan)
    assert not RepositoryBlob.objects.filter(blob__digest=orphan).exists()
    assert _blob_there(digest_of(b"kept layer")) and _blob_there(digest_of(b'{"a":1}'))
    _pull(hub, NAME, "v1")
    assert Manifest.objects.filter(digest=image).exists()


def test_it_spares_blobs_touched_within_the_grace_period(hub: Client) -> None:
    orphan = push_blob(hub, NAME, b"young orphan")

    assert collect(grace_seconds=3600).blobs == []
    assert _blob_there(orphan)

    _age(7200)
    assert collect(grace_seconds=3600).blobs == [(orphan, len(b"young orphan"))]
    assert _blob_gone(orphan)


def test_it_spares_a_blob_a_client_just_looked_at(hub: Client, settings: Any) -> None:
    settings.HUB_GC_GRACE_SECONDS = 3600
    orphan = push_blob(hub, NAME, b"about to be referenced")
    _age(7200)

    assert hub.head(f"/v2/{NAME}/blobs/{orphan}").status_code == 200

    assert collect().blobs == []
    # A manifest pushed now may still reference it.
    push_blob(hub, NAME, b"{}")
    content = image_manifest(hub, NAME, layers=(b"about to be referenced",), push_blobs=False)
    assert put_manifest(hub, NAME, "v1", content).status_code == 201


def test_a_blob_uploaded_again_while_its_bytes_await_removal_keeps_them(
    hub: Client, storage_backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race of an upload with a collection that deleted the row and not yet the bytes."""
    data = os.urandom(1000)
    digest = push_blob(hub, NAME, data)
    waiting: list[list[str]] = []
    monkeypatch.setattr(gc, "_remove_bytes", waiting.append)
    assert collect(grace_seconds=0).blobs == [(digest, 1000)]
    assert not Blob.objects.filter(digest=digest).exists()

    push_blob(hub, NAME, data)  # the bytes are in the store still: the row comes back
    monkeypatch.undo()
    gc._remove_bytes(waiting[0])

    assert _blob_there(digest)
    response = hub.get(f"/v2/{NAME}/blobs/{digest}")
    assert b"".join(response.streaming_content) == data  # type: ignore[attr-defined]


# --- manifests -------------------------------------------------------------------------------


def test_it_keeps_untagged_manifests_without_a_policy(hub: Client) -> None:
    content = image_manifest(hub, NAME, layers=(b"untagged layer",))
    assert put_manifest(hub, NAME, digest_of(content), content).status_code == 201

    report = collect(grace_seconds=0)

    assert report.manifests == [] and report.blobs == []
    assert _blob_there(digest_of(b"untagged layer"))


def test_it_removes_untagged_manifests_by_policy_then_their_blobs(hub: Client) -> None:
    push_image(hub, NAME, "v1", layers=(b"shared", b"only tagged"))
    untagged = image_manifest(hub, NAME, config=b'{"u":1}', layers=(b"shared", b"only untagged"))
    assert put_manifest(hub, NAME, digest_of(untagged), untagged).status_code == 201
    _policy(NAME, 0)

    report = collect(grace_seconds=0)

    assert report.manifests == [(NAME, digest_of(untagged), len(untagged))]
    assert sorted(report.blobs) == sorted(
        [(digest_of(b"only untagged"), 13), (digest_of(b'{"u":1}'), 7)]
    )
    assert not Manifest.objects.filter(digest=digest_of(untagged)).exists()
    assert _blob_there(digest_of(b"shared")) and _blob_there(digest_of(b"only tagged"))
    _pull(hub, NAME, "v1")


def test_it_waits_for_the_policy_age(hub: Client) -> None:
    untagged = image_manifest(hub, NAME, layers=(b"young",))
    assert put_manifest(hub, NAME, digest_of(untagged), untagged).status_code == 201
    _policy(NAME, 2)

    assert collect(grace_seconds=0).manifests == []
    _age(3 * 3600)
    assert collect(grace_seconds=0).manifests == [(NAME, digest_of(untagged), len(untagged))]


def test_it_keeps_what_a_kept_index_or_referrer_needs(hub: Client) -> None:
    amd = image_manifest(hub, NAME, config=b'{"arch":"amd64"}')
    arm = image_manifest(hub, NAME, config=b'{"arch":"arm64"}')
    for child in (amd, arm):
        assert put_manifest(hub, NAME, digest_of(child), child).status_code == 201
    index = index_manifest([(amd, mt.OCI_MANIFEST), (arm, mt.OCI_MANIFEST)])
    assert put_manifest(hub, NAME, "multi", index, mt.OCI_INDEX).status_code == 201
    # A signature (untagged referrer) of the tagged index.
    signature = image_manifest(
        hub,
        NAME,
        config=b"sig",
        artifact_type="application/vnd.example.sig",
        subject=descriptor(index, mt.OCI_INDEX),
    )
    assert put_manifest(hub, NAME, digest_of(signature), signature).status_code == 201
    # An untagged image with its own untagged signature: both garbage.
    lonely = image_manifest(hub, NAME, config=b'{"lonely":1}')
    assert put_manifest(hub, NAME, digest_of(lonely), lonely).status_code == 201
    lonely_sig = image_manifest(
        hub, NAME, config=b"sig2", subject=descriptor(lonely, mt.OCI_MANIFEST)
    )
    assert put_manifest(hub, NAME, digest_of(lonely_sig), lonely_sig).status_code == 201
    _policy(NAME, 0)

    report = collect(grace_seconds=0)

    assert sorted(d for _, d, _ in report.manifests) == sorted(
        [digest_of(lonely), digest_of(lonely_sig)]
    )
    remaining = set(Manifest.objects.values_list("digest", flat=True))
    assert remaining == {digest_of(m) for m in (amd, arm, index, signature)}

    # Untag the index: it, its children and its signature all go.
    assert hub.delete(f"/v2/{NAME}/manifests/multi").status_code == 202
    report = collect(grace_seconds=0)
    assert len(report.manifests) == 4
    assert not Manifest.objects.exists()
    assert Blob.objects.count() == 0


# --- dry run, records, exclusion -------------------------------------------------------------


def test_a_dry_run_lists_exactly_what_the_run_then_removes(hub: Client) -> None:
    push_image(hub, NAME, "v1", layers=(b"live",))
    untagged = image_manifest(hub, NAME, config=b'{"x":2}', layers=(b"dead layer",))
    assert put_manifest(hub, NAME, digest_of(untagged), untagged).status_code == 201
    push_blob(hub, NAME, b"stray")
    _policy(NAME, 0)
    before = (Manifest.objects.count(), Blob.objects.count())

    dry = collect(grace_seconds=0, dry_run=True)

    assert (Manifest.objects.count(), Blob.objects.count()) == before
    assert dry.manifests == [(NAME, digest_of(untagged), len(untagged))]
    assert len(dry.blobs) == 3  # the config and layer of the untagged image, the stray blob
    real = collect(grace_seconds=0)
    assert real.manifests == dry.manifests
    assert sorted(real.blobs) == sorted(dry.blobs)
    assert real.bytes_freed == dry.bytes_freed == len(b'{"x":2}') + len(b"dead layer") + 5


def test_each_run_is_recorded_and_audited(hub: Client) -> None:
    push_blob(hub, NAME, b"twelve bytes")

    report = collect(grace_seconds=0)

    run = GcRun.objects.get(pk=report.run_id)
    assert run.finished_at is not None and not run.dry_run and run.grace_seconds == 0
    assert (run.manifests_removed, run.blobs_removed, run.bytes_freed) == (0, 1, 12)
    event = Event.objects.filter(action="gc.run").get()
    assert event.actor_name == "system"
    assert event.details["bytes_freed"] == 12 and event.details["blobs_removed"] == 1
    collect(grace_seconds=0, dry_run=True)
    assert GcRun.objects.filter(dry_run=True).count() == 1
    assert Event.objects.filter(action="gc.dry_run").count() == 1


def test_it_skips_while_another_collection_runs(hub: Client) -> None:
    push_blob(hub, NAME, b"stray")
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        from django.db import connection

        with collection_lock() as mine:
            assert mine
            holding.set()
            release.wait(30)
        connection.close()

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert holding.wait(30)
        report = collect(grace_seconds=0)
    finally:
        release.set()
        thread.join()
    assert report.skipped and report.blobs == []
    assert Blob.objects.count() == 1


# --- hub gc ----------------------------------------------------------------------------------


def test_hub_gc_dry_run_lists_and_removes_nothing(hub: Client) -> None:
    stray = push_blob(hub, NAME, b"stray")
    out = io.StringIO()

    call_command("gc", "--dry-run", "--grace", "0", stdout=out)

    assert out.getvalue().splitlines() == [
        f"blob {stray} 5",
        "would remove 0 manifests, 1 blobs, 5 bytes (grace 0 s)",
    ]
    assert _blob_there(stray)
    out = io.StringIO()
    call_command("gc", "--grace", "0", stdout=out)
    assert out.getvalue().splitlines()[-1] == "removed 0 manifests, 1 blobs, 5 bytes (grace 0 s)"
    assert _blob_gone(stray)


def test_hub_gc_uses_the_configured_grace(hub: Client, settings: Any) -> None:
    settings.HUB_GC_GRACE_SECONDS = 3600
    push_blob(hub, NAME, b"stray")
    out = io.StringIO()
    call_command("gc", stdout=out)
    assert out.getvalue().strip() == "removed 0 manifests, 0 blobs, 0 bytes (grace 3600 s)"
    with pytest.raises(CommandError, match="0 or more"):
        call_command("gc", "--grace", "-1")


# --- the policy, through the management API --------------------------------------------------


def test_an_administrator_sets_the_untagged_manifest_policy(people: Any) -> None:
    from tests.management_api import as_

    url = "/api/repositories/acme/private/"
    client = Client()
    assert as_(client, people, "alice", "GET", url).json()["untagged_manifest_hours"] is None

    response = as_(client, people, "alice", "PATCH", url, {"untagged_manifest_hours": 48})

    assert response.status_code == 200, response.content
    assert response.json()["untagged_manifest_hours"] == 48
    assert Repository.objects.get(name="acme/private").untagged_manifest_hours == 48
    event = Event.objects.filter(action="repository.update").latest("id")
    assert event.details["after"]["untagged_manifest_hours"] == 48
    assert (
        as_(client, people, "bob", "PATCH", url, {"untagged_manifest_hours": 1}).status_code == 403
    )
    bad = as_(client, people, "alice", "PATCH", url, {"untagged_manifest_hours": -1})
    assert bad.status_code == 400
    back = as_(client, people, "alice", "PATCH", url, {"untagged_manifest_hours": None})
    assert back.json()["untagged_manifest_hours"] is None
    assert as_(client, people, "alice", "PATCH", url, {"description": "x"}).status_code == 200
    assert Repository.objects.get(name="acme/private").untagged_manifest_hours is None

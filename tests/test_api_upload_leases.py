"""Upload leases: a dead holder's lease is waited out and taken over, a live one is not.

What a killed node leaves behind: a session whose lease its request held. A proxy resends
the finishing PUT to another node, which waits (a few seconds) for that lease to lapse and
then finishes the upload. A second writer beside a live one is still refused.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from registry import leases
from registry.errors import RegistryError
from registry.leases import Lease
from registry.models import Upload
from registry.services import uploads as svc
from tests.helpers import assert_error, digest_of, patch_chunk, start_upload, with_query

pytestmark = pytest.mark.django_db

NAME = "library/leases"
DATA = os.urandom(5000)


def _upload_id(location: str) -> str:
    return location.rstrip("/").rsplit("/", 1)[1]


def _hold(location: str, *, seconds: float, holder: str = "dead") -> None:
    """As a request would leave it: the session leased to `holder` for `seconds` more."""
    Upload.objects.filter(pk=_upload_id(location)).update(
        lease_token=holder, lease_until=timezone.now() + timedelta(seconds=seconds)
    )


def test_it_takes_over_a_lapsed_lease_at_once(client) -> None:
    location = start_upload(client, NAME)
    _hold(location, seconds=-1)
    started = time.monotonic()
    assert patch_chunk(client, location, DATA[:100], "0-99").status_code == 202
    assert time.monotonic() - started < leases.POLL_SECONDS
    assert Upload.objects.get().lease_token == ""


def test_it_waits_for_a_dead_holders_lease_to_lapse(client) -> None:
    location = start_upload(client, NAME)
    patch_chunk(client, location, DATA[:1000], "0-999")
    _hold(location, seconds=0.6)  # a node died while it held the lease: nobody renews it
    started = time.monotonic()
    response = client.put(with_query(location, digest=digest_of(DATA[:1000])))
    waited = time.monotonic() - started
    assert response.status_code == 201, response.content
    assert response["Docker-Content-Digest"] == digest_of(DATA[:1000])
    assert 0.5 <= waited < leases.WAIT_SECONDS
    assert not Upload.objects.exists()


def test_a_retried_finishing_put_with_the_last_chunk_completes(client) -> None:
    """The PUT that died carried the last chunk: its retry sends it again, at the offset the
    session saved, and gets the blob of the whole upload."""
    location = start_upload(client, NAME)
    patch_chunk(client, location, DATA[:3000], "0-2999")
    _hold(location, seconds=0.3)
    response = client.put(
        with_query(location, digest=digest_of(DATA)),
        DATA[3000:],
        content_type="application/octet-stream",
        headers={"Content-Range": f"3000-{len(DATA) - 1}"},
    )
    assert response.status_code == 201, response.content
    assert client.get(f"/v2/{NAME}/blobs/{digest_of(DATA)}").getvalue() == DATA


def test_it_refuses_a_second_writer_once_it_sees_the_holder_alive(client, monkeypatch) -> None:
    location = start_upload(client, NAME)
    _hold(location, seconds=leases.LEASE_SECONDS, holder="alive")
    polls: list[float] = []

    def holder_renews(seconds: float) -> None:  # the live holder's heartbeat meanwhile
        polls.append(seconds)
        _hold(location, seconds=leases.LEASE_SECONDS + len(polls), holder="alive")

    monkeypatch.setattr(leases, "_pause", holder_renews)
    response = patch_chunk(client, location, DATA[:100], "0-99")
    assert_error(response, 409, "BLOB_UPLOAD_INVALID")
    assert len(polls) == 1  # refused on the first renewal it saw, not at the deadline
    upload = Upload.objects.get()
    assert (upload.size, upload.lease_token) == (0, "alive")


def test_it_gives_up_on_a_lease_that_outlasts_the_wait(client, monkeypatch) -> None:
    monkeypatch.setattr(leases, "WAIT_SECONDS", 0.5)
    location = start_upload(client, NAME)
    _hold(location, seconds=60, holder="cleanup")  # e.g. a cleanup round removing it
    started = time.monotonic()
    assert_error(patch_chunk(client, location, DATA[:100], "0-99"), 409, "BLOB_UPLOAD_INVALID")
    assert 0.5 <= time.monotonic() - started < 5
    assert Upload.objects.get().size == 0


def test_a_waiting_writer_goes_on_when_the_holder_is_done(client, monkeypatch) -> None:
    """It then writes as any later request would: a range the holder already wrote is
    refused (416), the next one is taken."""
    location = start_upload(client, NAME)
    _hold(location, seconds=leases.LEASE_SECONDS, holder="alive")

    def holder_finishes(seconds: float) -> None:
        Upload.objects.update(size=100, lease_token="", lease_until=None)

    monkeypatch.setattr(leases, "_pause", holder_finishes)
    assert_error(patch_chunk(client, location, DATA[:100], "0-99"), 416, "BLOB_UPLOAD_INVALID")


def test_a_writer_stops_when_its_lease_was_taken(client, storage_backend: str) -> None:
    """Never two writers: once the heartbeat finds the lease gone, the request writes no more
    and saves nothing."""
    location = start_upload(client, NAME)
    upload = Upload.objects.get()

    def chunks() -> Iterator[bytes]:
        yield DATA[:100]
        _hold(location, seconds=leases.LEASE_SECONDS, holder="taker")
        leases.heartbeat.beat()
        yield DATA[100:200]
        pytest.fail("the request went on writing after its lease was taken")

    with pytest.raises(RegistryError) as raised:
        svc.upload_append(upload=upload, chunks=chunks())
    assert (raised.value.status, raised.value.code) == (409, "BLOB_UPLOAD_INVALID")
    upload.refresh_from_db()
    assert (upload.size, upload.lease_token) == (0, "taker")
    assert leases.heartbeat.held() == []


def test_the_heartbeat_renews_what_it_holds_and_flags_what_it_lost(client) -> None:
    location = start_upload(client, NAME)
    lease = Lease(Upload.objects.get().pk)
    lease.acquire()
    try:
        Upload.objects.update(lease_until=timezone.now() + timedelta(seconds=1))
        leases.heartbeat.beat()
        assert Upload.objects.get().lease_until > timezone.now() + timedelta(seconds=5)
        assert lease.held()
        _hold(location, seconds=5, holder="taker")
        leases.heartbeat.beat()
        assert lease.suspect
        assert not lease.held()
    finally:
        lease.release()
    assert leases.heartbeat.held() == []
    assert Upload.objects.get().lease_token == "taker"  # release leaves another's lease


@pytest.mark.django_db(transaction=True)
def test_the_heartbeat_renews_every_lease_of_the_process_in_one_round_trip_or_two(
    client, django_assert_num_queries: Any
) -> None:
    held = []
    for _ in range(5):
        start_upload(client, NAME)
    for upload in Upload.objects.all():
        lease = Lease(upload.pk)
        lease.acquire()
        held.append(lease)
    try:
        Upload.objects.update(lease_until=timezone.now() + timedelta(seconds=1))
        with django_assert_num_queries(2):  # was an UPDATE per lease, every 2 s
            leases.heartbeat.beat()
        assert not Upload.objects.filter(lease_until__lt=timezone.now() + timedelta(seconds=5))
        assert not any(lease.suspect for lease in held)
    finally:
        for lease in held:
            lease.release()


def test_the_heartbeat_thread_keeps_a_long_request_leased(client, monkeypatch: Any) -> None:
    monkeypatch.setattr(leases, "HEARTBEAT_SECONDS", 0.05)
    monkeypatch.setattr(leases, "LEASE_SECONDS", 0.3)
    fresh = leases.Heartbeat()  # not one of an earlier test, asleep for its 2 s
    monkeypatch.setattr(leases, "heartbeat", fresh)
    start_upload(client, NAME)

    def slow_chunks() -> Iterator[bytes]:
        for i in range(8):  # 0.8 s: well past the lease without its heartbeat
            time.sleep(0.1)
            yield DATA[i * 100 : (i + 1) * 100]
        assert Upload.objects.get().lease_until > timezone.now()

    upload = svc.upload_append(upload=Upload.objects.get(), chunks=slow_chunks())
    assert upload.size == 800
    deadline = time.monotonic() + 2
    while fresh.running():  # it stops when nothing is held
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_a_writer_asks_the_database_itself_when_the_heartbeat_is_late(
    client, monkeypatch: Any
) -> None:
    """A heartbeat stuck (on a busy database, say) renews nothing: the request thread then
    checks its lease itself before it writes on, and stops if it was taken meanwhile."""
    start_upload(client, NAME)
    upload = Upload.objects.get()
    monkeypatch.setattr(leases, "HEARTBEAT_SECONDS", 0.05)

    def chunks() -> Iterator[bytes]:
        yield DATA[:100]
        Upload.objects.update(lease_token="taker")  # taken, and no heartbeat noticed
        time.sleep(0.15)
        yield DATA[100:200]
        pytest.fail("the request went on writing after its lease was taken")

    with pytest.raises(RegistryError) as raised:
        svc.upload_append(upload=upload, chunks=chunks())
    assert raised.value.status == 409
    upload.refresh_from_db()
    assert (upload.size, upload.lease_token) == (0, "taker")

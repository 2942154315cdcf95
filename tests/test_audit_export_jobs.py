"""Export jobs: big exports written to the blob store in the background, downloaded by
their requester through a link that expires."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
from django.core import signing
from django.test import Client
from django.utils import timezone

import audit
from audit import export_jobs, exporting, verify_export
from audit.models import Event, ExportJob
from audit.sealing import seal_pending
from hub.scheduler import run_due_jobs
from registry.storage import ObjectNotFound, get_storage
from teams.actions import membership_set
from tests.conftest import basic_auth
from tests.people import PASSWORD, People

pytestmark = pytest.mark.django_db

Capture = Callable[..., Any]


def as_user(who: str) -> Client:
    return Client(HTTP_AUTHORIZATION=basic_auth(who, PASSWORD))


@pytest.fixture
def acme_events(people: People) -> int:
    """Sealed events of acme's chain; returns how many."""
    for i in range(7):
        audit.record(
            action="manifest.push",
            organisation="acme",
            repository="acme/private",
            tag=f'v{i} "q", ✓',
            details={"n": i, "text": "comma, newline\n"},
            actor=people.actor("alice"),
        )
    audit.record(action="manifest.push", repository="charlie/tool", actor=people.actor("charlie"))
    seal_pending()
    return Event.objects.filter(chain="org:acme", seal__isnull=False).count()


def start(capture: Capture, who: str, **params: Any) -> dict[str, Any]:
    """GET /api/audit/export past the limit, the job run as its commit sends it."""
    with capture(execute=True):
        response = as_user(who).get("/api/audit/export", params)
    assert response.status_code == 202, response.content
    job = json.loads(response.content)
    assert response["Location"] == job["url"] == f"/api/audit/exports/{job['id']}/"
    assert job["status"] == "queued" and job["download_url"] is None  # until it has run
    return json.loads(as_user(who).get(job["url"]).content)  # type: ignore[no-any-return]


def download(who: str, link: str) -> Any:
    response = as_user(who).get(link)
    if response.status_code == 200:
        return b"".join(response.streaming_content)
    return response.status_code


def test_it_streams_up_to_the_limit_and_makes_a_job_past_it(
    settings: Any, acme_events: int, django_capture_on_commit_callbacks: Capture
) -> None:
    settings.HUB_AUDIT_EXPORT_SYNC_LIMIT = acme_events
    response = as_user("alice").get("/api/audit/export", {"organisation": "acme"})
    assert response.status_code == 200 and response.streaming
    streamed = b"".join(response.streaming_content)
    assert streamed.count(b"\n") == acme_events
    assert not ExportJob.objects.exists()

    settings.HUB_AUDIT_EXPORT_SYNC_LIMIT = acme_events - 1
    job = start(django_capture_on_commit_callbacks, "alice", organisation="acme")
    assert job["status"] == "done" and job["row_count"] == acme_events
    assert job["requester"] == "alice" and job["filters"] == {"organisation": "acme"}
    assert download("alice", job["download_url"]) == streamed


@pytest.mark.parametrize("fmt", exporting.FORMATS)
def test_it_writes_a_file_that_round_trips_and_verifies(
    settings: Any,
    storage_backend: str,
    acme_events: int,
    django_capture_on_commit_callbacks: Capture,
    fmt: str,
) -> None:
    streamed = "".join(exporting.render(fmt, Event.objects.all()))
    settings.HUB_AUDIT_EXPORT_SYNC_LIMIT = 1
    job = start(django_capture_on_commit_callbacks, "admin", format=fmt)
    data = download("admin", job["download_url"])
    assert data.decode() == streamed
    assert job["sha256"] == hashlib.sha256(data).hexdigest() and job["size"] == len(data)
    assert job["row_count"] == Event.objects.filter(seal__isnull=False).count()
    if fmt == "jsonl":
        problems, heads = verify_export.check(data.decode().splitlines())
        assert problems == [] and "org:acme" in heads
    stored = ExportJob.objects.get(id=job["id"])
    assert stored.storage_key.startswith("audit-export/") and stored.expires_at is not None
    actions = list(
        Event.objects.filter(action__startswith="audit.export").order_by("id").values("action")
    )
    assert [a["action"] for a in actions] == ["audit.export_start", "audit.export_download"]


def test_it_shows_a_job_to_its_requester_and_administrators_only(
    settings: Any, acme_events: int, django_capture_on_commit_callbacks: Capture
) -> None:
    settings.HUB_AUDIT_EXPORT_SYNC_LIMIT = 1
    job = start(django_capture_on_commit_callbacks, "alice", organisation="acme")
    for who in ("charlie", "bob"):
        assert as_user(who).get(job["url"]).status_code == 404
        assert download(who, job["download_url"]) == 404
        assert json.loads(as_user(who).get("/api/audit/exports/").content) == []
    assert Client().get(job["url"]).status_code in (401, 403)
    assert json.loads(as_user("admin").get(job["url"]).content)["status"] == "done"
    assert isinstance(download("admin", job["download_url"]), bytes)
    mine = json.loads(as_user("alice").get("/api/audit/exports/").content)
    assert [j["id"] for j in mine] == [job["id"]]


def test_it_stops_honouring_a_link_after_its_time(
    settings: Any,
    acme_events: int,
    django_capture_on_commit_callbacks: Capture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings.HUB_AUDIT_EXPORT_SYNC_LIMIT = 1
    settings.HUB_AUDIT_EXPORT_LINK_TTL = 600
    job = start(django_capture_on_commit_callbacks, "alice", organisation="acme")
    assert job["download_expires_in"] == 600
    later = time.time() + 601
    monkeypatch.setattr(signing, "time", SimpleNamespace(time=lambda: later))
    assert download("alice", job["download_url"]) == 410
    fresh = json.loads(as_user("alice").get(job["url"]).content)["download_url"]  # made "later"
    assert isinstance(download("alice", fresh), bytes)
    tampered = job["download_url"].replace("token=", "token=x")
    assert download("alice", tampered) == 410


def test_it_exports_what_the_requester_may_read_when_the_job_runs(
    settings: Any, people: People, acme_events: int, django_capture_on_commit_callbacks: Capture
) -> None:
    settings.HUB_AUDIT_EXPORT_SYNC_LIMIT = 1
    membership_set(organisation=people.acme, user=people.bob, role="owner")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = as_user("bob").get("/api/audit/export", {"organisation": "acme"})
    assert response.status_code == 202
    membership_set(organisation=people.acme, user=people.bob, role="member")
    for callback in callbacks:
        callback()
    job = ExportJob.objects.get()
    assert job.status == "done" and job.row_count == 0 and job.size == 0


def test_it_removes_expired_files_and_marks_stale_jobs_failed(
    settings: Any, acme_events: int, django_capture_on_commit_callbacks: Capture
) -> None:
    settings.HUB_AUDIT_EXPORT_SYNC_LIMIT = 1
    job = start(django_capture_on_commit_callbacks, "alice", organisation="acme")
    stored = ExportJob.objects.get(id=job["id"])
    assert get_storage().object_get(stored.storage_key)
    stale = ExportJob.objects.create(
        requester=stored.requester,
        format="csv",
        status="running",
        created_at=timezone.now(),
        started_at=timezone.now() - export_jobs.STALE,
    )
    assert export_jobs.expire_jobs() == 0  # not due yet
    ExportJob.objects.filter(id=stored.id).update(expires_at=timezone.now())
    assert "audit.expire_exports" in settings.HUB_PERIODIC_JOBS
    assert "audit.expire_exports" in run_due_jobs()
    with pytest.raises(ObjectNotFound):
        get_storage().object_get(stored.storage_key)
    assert ExportJob.objects.get(id=stored.id).status == "expired"
    assert ExportJob.objects.get(id=stale.id).status == "failed"
    assert download("alice", job["download_url"]) == 410
    assert json.loads(as_user("alice").get(job["url"]).content)["download_url"] is None


def test_it_starts_a_job_on_request_and_refuses_bad_input(
    acme_events: int, django_capture_on_commit_callbacks: Capture
) -> None:
    alice = as_user("alice")
    assert alice.post("/api/audit/exports/", {"format": "xml"}).status_code == 400
    assert alice.post("/api/audit/exports/", {"since": "yesterday"}).status_code == 400
    assert not ExportJob.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        response = alice.post("/api/audit/exports/", {"format": "csv", "organisation": "acme"})
    assert response.status_code == 202
    job = json.loads(alice.get(response["Location"]).content)
    assert job["status"] == "done" and job["row_count"] == acme_events
    robot = Client(HTTP_AUTHORIZATION=basic_auth("acme+ci", "wrong"))
    assert robot.post("/api/audit/exports/", {}).status_code in (401, 403)


def test_it_marks_a_job_failed_when_the_store_fails(
    settings: Any,
    acme_events: int,
    django_capture_on_commit_callbacks: Capture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(name: str, chunks: Any) -> int:
        raise OSError("disk full")

    settings.HUB_AUDIT_EXPORT_SYNC_LIMIT = 1
    monkeypatch.setattr(get_storage(), "object_write", broken)
    job = start(django_capture_on_commit_callbacks, "alice", organisation="acme")
    assert job["status"] == "failed" and "disk full" in job["error"]
    assert job["download_url"] is None


def test_it_offers_the_job_on_the_audit_page(
    settings: Any, people: People, acme_events: int, django_capture_on_commit_callbacks: Capture
) -> None:
    settings.HUB_AUDIT_EXPORT_SYNC_LIMIT = 1
    alice = Client()
    alice.force_login(people.alice)
    with django_capture_on_commit_callbacks(execute=True):
        response = alice.get("/audit/export", {"format": "csv", "actor": "alice"})
    job = ExportJob.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/audit/?export={job.id}"
    page = alice.get(response["Location"]).content.decode()
    assert "is <strong>done</strong>" in page and f"/api/audit/exports/{job.id}/download" in page
    charlie = Client()
    charlie.force_login(people.charlie)
    assert "/download" not in charlie.get(response["Location"]).content.decode()

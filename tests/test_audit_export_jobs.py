"""Export jobs: big exports written to the blob store in the background, downloaded by
their requester through a link that expires."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from django.core import signing
from django.db import connection, transaction
from django.test import Client
from django.utils import timezone

import audit
from audit import export_jobs, export_runner, exporting, tasks, verify_export
from audit.models import Event, ExportJob
from audit.sealing import seal_pending
from hub import scheduler
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
    """GET /api/audit/export past the limit: a queued job, which a runner then claims."""
    with capture(execute=True):
        response = as_user(who).get("/api/audit/export", params)
    assert response.status_code == 202, response.content
    job = json.loads(response.content)
    assert response["Location"] == job["url"] == f"/api/audit/exports/{job['id']}/"
    assert job["status"] == "queued" and job["download_url"] is None  # until it has run
    # The request ran nothing, in it or in a thread: the job waits in the database.
    assert ExportJob.objects.get(id=job["id"]).status == "queued"
    ran = export_runner.run_ready()
    assert ran is not None and ran.id == job["id"]
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
    with django_capture_on_commit_callbacks(execute=True):
        response = as_user("bob").get("/api/audit/export", {"organisation": "acme"})
    assert response.status_code == 202
    membership_set(organisation=people.acme, user=people.bob, role="member")
    export_runner.run_ready()
    job = ExportJob.objects.get()
    assert job.status == "done" and job.row_count == 0 and job.size == 0


def test_it_removes_expired_files_and_fails_jobs_whose_runners_kept_dying(
    settings: Any, acme_events: int, django_capture_on_commit_callbacks: Capture
) -> None:
    settings.HUB_AUDIT_EXPORT_SYNC_LIMIT = 1
    job = start(django_capture_on_commit_callbacks, "alice", organisation="acme")
    stored = ExportJob.objects.get(id=job["id"])
    storage = get_storage()
    assert storage.object_get(stored.storage_key)
    dying = ExportJob.objects.create(
        requester=stored.requester,
        format="csv",
        status="running",
        claim="a" * 32,
        storage_key="audit-export/dying.csv",
        attempts=export_runner.MAX_ATTEMPTS,
        created_at=timezone.now(),
        lease_until=timezone.now() - timedelta(seconds=1),
    )
    storage.object_put(dying.storage_key, b"half a file")
    assert export_runner.expire_jobs() == 0  # not due yet
    ExportJob.objects.filter(id=stored.id).update(expires_at=timezone.now())
    assert "audit.expire_exports" in settings.HUB_PERIODIC_JOBS
    ran = run_due_jobs()
    assert "audit.expire_exports" in ran and "audit.run_exports" in ran
    with pytest.raises(ObjectNotFound):
        storage.object_get(stored.storage_key)
    assert ExportJob.objects.get(id=stored.id).status == "expired"
    dying.refresh_from_db()
    assert dying.status == "failed" and dying.attempts == export_runner.MAX_ATTEMPTS
    assert dying.error == export_runner.ABANDONED.format(n=export_runner.MAX_ATTEMPTS)
    assert storage.object_list(export_jobs.PREFIX) == []
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
    assert response.status_code == 202 and json.loads(response.content)["status"] == "queued"
    export_runner.run_ready()
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
    assert "is being written" in alice.get(response["Location"]).content.decode()
    export_runner.run_ready()
    page = alice.get(response["Location"]).content.decode()
    assert "is <strong>done</strong>" in page and f"/api/audit/exports/{job.id}/download" in page
    charlie = Client()
    charlie.force_login(people.charlie)
    assert "/download" not in charlie.get(response["Location"]).content.decode()


# --- Claiming: a queued job lives in the database, and exactly one runner takes it ------


def queued_job(
    people: People, who: str = "alice", filters: dict[str, str] | None = None
) -> ExportJob:
    """A job as a request starts it (nothing is sent without a broker)."""
    given = {"organisation": "acme"} if filters is None else filters
    with transaction.atomic():
        return export_jobs.export_job_start(actor=people.actor(who), fmt="jsonl", filters=given)


def lapse(job_id: int) -> None:
    """What a runner that died leaves: its claim, the lease no longer renewed."""
    ExportJob.objects.filter(id=job_id).update(lease_until=timezone.now() - timedelta(seconds=1))


def test_it_runs_a_queued_job_from_the_embedded_scheduler(
    settings: Any, acme_events: int, django_capture_on_commit_callbacks: Capture
) -> None:
    settings.HUB_AUDIT_EXPORT_SYNC_LIMIT = 1
    with django_capture_on_commit_callbacks(execute=True):
        response = as_user("alice").post("/api/audit/exports/", {"organisation": "acme"})
    assert response.status_code == 202
    job = ExportJob.objects.get()
    assert job.status == "queued" and job.claim == "" and job.attempts == 0
    # Seconds, not the hours of the sweeps: how long a requester waits without Redis.
    every = settings.HUB_PERIODIC_JOBS["audit.run_exports"]
    assert 0 < every <= 10 and scheduler.tick_seconds() <= every
    settings.HUB_PERIODIC_JOBS = {"audit.run_exports": every}
    assert run_due_jobs() == ["audit.run_exports"]
    job.refresh_from_db()
    assert job.status == "done" and job.row_count == acme_events and job.attempts == 1
    assert job.lease_until is None
    assert get_storage().object_list(export_jobs.PREFIX) == [job.storage_key]


def test_it_sends_the_job_to_a_worker_when_there_is_a_broker(
    settings: Any,
    people: People,
    acme_events: int,
    django_capture_on_commit_callbacks: Capture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sent: list[tuple[Any, ...]] = []
    monkeypatch.setattr(tasks.run_export, "delay", lambda *args: sent.append(args))
    settings.CELERY_TASK_ALWAYS_EAGER = False
    with django_capture_on_commit_callbacks(execute=True):
        job = queued_job(people)
    assert sent == [(job.id,)]
    # The worker's task claims through the same function as the scheduler, so a message
    # delivered twice (or a sweep that got there first) runs the job once.
    assert tasks.run_export(job.id) == acme_events
    assert tasks.run_export(job.id) is None
    assert tasks.run_exports() is None
    assert ExportJob.objects.get(id=job.id).attempts == 1


def test_it_claims_a_job_once_when_two_runners_race_for_it(
    people: People, acme_events: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both read the job as queued; the rival's UPDATE lands between this runner's read
    and its own, which then matches nothing."""
    job = queued_job(people)
    rival: list[export_runner.Claim | None] = []
    token_hex = export_runner.secrets.token_hex

    def rival_first(n: int) -> str:
        if not rival:
            rival.append(None)
            rival[0] = export_runner.claim()
        return token_hex(n)

    monkeypatch.setattr(export_runner.secrets, "token_hex", rival_first)
    assert export_runner.claim() is None
    assert rival[0] is not None and rival[0].job_id == job.id
    job.refresh_from_db()
    assert job.status == "running" and job.claim == rival[0].token and job.attempts == 1
    assert export_runner.claim() is None  # held: its lease runs
    lapse(job.id)
    monkeypatch.setattr(export_runner.secrets, "token_hex", token_hex)
    again = export_runner.claim()
    assert again is not None and again.job_id == job.id and again.token != rival[0].token


@pytest.mark.django_db(transaction=True)
def test_it_gives_each_job_to_one_of_two_concurrent_claimers(people: People) -> None:
    if connection.vendor == "sqlite" and connection.is_in_memory_db():
        pytest.skip("the shared-cache in-memory database refuses a second writer")
    for _ in range(20):
        queued_job(people, "admin", {})
    barrier = threading.Barrier(2)
    claimed: list[list[int]] = [[], []]
    errors: list[BaseException] = []

    def claimer(me: int) -> None:
        try:
            barrier.wait(timeout=10)
            while (held := export_runner.claim()) is not None:
                claimed[me].append(held.job_id)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=claimer, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    every = sorted(ExportJob.objects.values_list("id", flat=True))
    assert sorted(claimed[0] + claimed[1]) == every  # each once, by one of them
    assert set(ExportJob.objects.values_list("attempts", flat=True)) == {1}


def test_it_runs_again_a_job_whose_runner_died_and_keeps_one_file(
    people: People,
    acme_events: int,
) -> None:
    job = queued_job(people)
    storage = get_storage()
    dead = export_runner.claim()
    assert dead is not None and dead.job_id == job.id
    storage.object_put(dead.name, b'{"half": "a file')  # it wrote this much, then died
    assert export_runner.run_ready() is None  # not while its lease runs
    lapse(job.id)
    finished = export_runner.run_ready()
    assert finished is not None and finished.id == job.id
    assert finished.status == "done" and finished.attempts == 2
    assert finished.row_count == acme_events and finished.storage_key != dead.name
    assert storage.object_list(export_jobs.PREFIX) == [finished.storage_key]
    data = storage.object_get(finished.storage_key)
    assert hashlib.sha256(data).hexdigest() == finished.sha256 and len(data) == finished.size
    problems, heads = verify_export.check(data.decode().splitlines())
    assert problems == [] and "org:acme" in heads


def test_it_discards_the_file_of_a_runner_that_lost_its_claim(
    people: People, acme_events: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A runner stalls past its lease; another claims the job and finishes it; the first
    then writes its file, finds the job no longer its own, and removes what it wrote."""
    job = queued_job(people)
    storage = get_storage()
    write = storage.object_write
    taken_over: list[ExportJob | None] = []

    def stalled(name: str, chunks: Any) -> int:
        if not taken_over:
            taken_over.append(None)
            lapse(job.id)
            taken_over[0] = export_runner.run_ready()
        return write(name, chunks)

    monkeypatch.setattr(storage, "object_write", stalled)
    slow = export_runner.claim()
    assert slow is not None
    assert export_runner.run_claimed(slow) is None
    other = taken_over[0]
    assert other is not None and other.status == "done" and other.attempts == 2
    job.refresh_from_db()
    assert job.status == "done" and job.storage_key == other.storage_key != slow.name
    assert storage.object_list(export_jobs.PREFIX) == [other.storage_key]


def test_it_renews_a_lease_only_for_the_runner_that_holds_the_claim(
    people: People, acme_events: int
) -> None:
    job = queued_job(people)
    held = export_runner.claim()
    assert held is not None
    ExportJob.objects.filter(id=job.id).update(lease_until=timezone.now())
    assert export_runner.renew(held)
    job.refresh_from_db()
    assert job.lease_until is not None and job.lease_until > timezone.now()
    lapse(job.id)
    taker = export_runner.claim()
    assert taker is not None and not export_runner.renew(held)
    assert export_runner.renew(taker)


@pytest.mark.django_db(transaction=True)
def test_it_keeps_the_lease_while_writing_and_stops_once_the_job_is_taken(
    settings: Any, people: People
) -> None:
    if connection.vendor == "sqlite" and connection.is_in_memory_db():
        pytest.skip("the heartbeat writes from its own thread and connection")
    settings.HUB_AUDIT_EXPORT_LEASE = 0.6  # renewed every 0.2 s
    job = queued_job(people, "admin", {})
    held = export_runner.claim()
    assert held is not None
    with export_runner.Heartbeat(held) as heartbeat:
        time.sleep(1.0)  # past the first lease: only the renewals keep it
        assert export_runner.claim() is None and not heartbeat.lost.is_set()
        ExportJob.objects.filter(id=job.id).update(claim="taken-over")
        deadline = time.monotonic() + 5
        while not heartbeat.lost.is_set() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert heartbeat.lost.is_set()
        with pytest.raises(export_runner.LeaseLost):
            heartbeat.check()


def test_it_removes_files_no_job_holds_and_keeps_those_it_does(
    people: People, acme_events: int
) -> None:
    storage = get_storage()
    job = queued_job(people)
    held = export_runner.claim()
    assert held is not None
    storage.object_put(held.name, b"being written")  # the running attempt's file
    storage.object_put(f"{export_jobs.PREFIX}/000000000099-deadbeef.csv", b"orphan")
    assert export_runner.expire_jobs() == 0
    assert storage.object_list(export_jobs.PREFIX) == [held.name]
    assert ExportJob.objects.get(id=job.id).storage_key == held.name


@pytest.mark.django_db(transaction=True)
def test_it_renews_the_lease_while_the_export_is_being_read(
    settings: Any, people: People, acme_events: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The heartbeat's writes must not wait on the export's read (on SQLite a transaction
    around it would hold the one write lock until the file was written)."""
    if connection.vendor == "sqlite" and connection.is_in_memory_db():
        pytest.skip("the heartbeat writes from its own thread and connection")
    settings.HUB_AUDIT_EXPORT_LEASE = 0.6
    renewed: list[bool] = []
    renew = export_runner.renew
    monkeypatch.setattr(export_runner, "renew", lambda held: renewed.append(renew(held)) or True)
    storage = get_storage()
    write = storage.object_write

    def slow(name: str, chunks: Any) -> int:
        def paced() -> Any:
            for chunk in chunks:
                time.sleep(1.2)  # mid-export: the reading transaction, if any, is open
                yield chunk

        return write(name, paced())

    monkeypatch.setattr(storage, "object_write", slow)
    job = queued_job(people, "admin", {})
    done = export_runner.run_ready()
    assert done is not None and done.id == job.id and done.status == "done"
    assert done.row_count == Event.objects.filter(seal__isnull=False).count()
    assert len(renewed) >= 3 and all(renewed)

"""Background jobs in process (tasks eager): upload cleanup, the embedded scheduler, sending
tasks after the commit."""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

import boto3
import pytest
from django.db import transaction
from django.test import Client
from django.utils import timezone

from hub import scheduler
from hub.models import PeriodicJob
from hub.tasks import send_on_commit
from registry.models import Upload
from registry.tasks import expire_uploads
from tests.helpers import patch_chunk, push_blob, start_upload

pytestmark = pytest.mark.django_db

NAME = "jobs/app"
MiB = 1024 * 1024


@pytest.fixture
def hub(registry_auth: dict[str, str]) -> Client:
    return Client(**registry_auth)


def _store_leftovers(settings: Any) -> list[str]:
    """What upload sessions have in the store: files, S3 objects and multipart uploads."""
    if settings.HUB_STORAGE == "filesystem":
        root = settings.HUB_STORAGE_DIR / "uploads"
        return sorted(p.name for p in root.iterdir()) if root.exists() else []
    s3 = settings.HUB_S3
    client = boto3.client(
        "s3",
        endpoint_url=s3["endpoint_url"],
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    objects = client.list_objects_v2(Bucket=s3["bucket"], Prefix="uploads/").get("Contents", [])
    mpus = client.list_multipart_uploads(Bucket=s3["bucket"], Prefix="uploads/").get("Uploads", [])
    return sorted([o["Key"] for o in objects] + [f"mpu:{u['Key']}" for u in mpus])


def test_it_removes_abandoned_uploads_and_their_data(
    hub: Client, settings: Any, storage_backend: str
) -> None:
    settings.HUB_UPLOAD_IDLE_TIMEOUT = 3600
    abandoned = start_upload(hub, NAME)
    # More than a part: on S3 a multipart upload is open, plus a tail object.
    assert patch_chunk(hub, abandoned, os.urandom(5 * MiB + 100)).status_code == 202
    fresh = start_upload(hub, NAME)
    assert patch_chunk(hub, fresh, b"still going").status_code == 202
    assert _store_leftovers(settings)
    abandoned_id = abandoned.rstrip("/").rsplit("/", 1)[1]
    Upload.objects.filter(pk=abandoned_id).update(updated_at=timezone.now() - timedelta(hours=2))

    assert expire_uploads.delay().get() == 1

    assert list(Upload.objects.values_list("pk", flat=True)) == [
        Upload.objects.get(pk=fresh.rstrip("/").rsplit("/", 1)[1]).pk
    ]
    leftovers = _store_leftovers(settings)
    assert not [item for item in leftovers if abandoned_id in item], leftovers
    assert hub.get(abandoned).status_code == 404
    assert expire_uploads.delay().get() == 0  # idempotent


def test_it_spares_an_upload_a_request_is_writing(hub: Client, settings: Any) -> None:
    location = start_upload(hub, NAME)
    upload_id = location.rstrip("/").rsplit("/", 1)[1]
    long_ago = timezone.now() - timedelta(seconds=settings.HUB_UPLOAD_IDLE_TIMEOUT + 60)
    Upload.objects.filter(pk=upload_id).update(
        updated_at=long_ago, lease_token="busy", lease_until=timezone.now() + timedelta(minutes=1)
    )

    assert expire_uploads.delay().get() == 0
    assert Upload.objects.filter(pk=upload_id).exists()


def test_a_finished_duplicate_upload_leaves_no_data(
    hub: Client, settings: Any, storage_backend: str, django_capture_on_commit_callbacks: Any
) -> None:
    """The second upload of a stored blob: its data is removed once the commit is done."""
    data = os.urandom(3000)
    push_blob(hub, NAME, data)
    with django_capture_on_commit_callbacks() as callbacks:
        push_blob(hub, "jobs/other", data)
    assert _store_leftovers(settings) != []  # not before the commit
    for callback in callbacks:
        callback()
    assert _store_leftovers(settings) == []
    assert Upload.objects.count() == 0


# --- sending after the commit ----------------------------------------------------------------


class _Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def delay(self, *args: Any) -> None:
        self.calls.append(args)


def test_tasks_are_sent_only_after_the_commit(django_capture_on_commit_callbacks: Any) -> None:
    task = _Recorder()
    with django_capture_on_commit_callbacks(execute=True):
        with transaction.atomic():
            send_on_commit(task, "kept")
            assert task.calls == []
        try:
            with transaction.atomic():
                send_on_commit(task, "rolled back")
                raise RuntimeError
        except RuntimeError:
            pass
    assert task.calls == [("kept",)]


# --- the embedded scheduler ------------------------------------------------------------------


def test_each_job_runs_once_per_period(settings: Any, hub: Client) -> None:
    settings.HUB_PERIODIC_JOBS = {"registry.expire_uploads": 600, "registry.collect_garbage": 0}

    assert scheduler.run_due_jobs() == ["registry.expire_uploads"]
    assert scheduler.run_due_jobs() == []  # another worker's thread, the same period
    PeriodicJob.objects.update(last_started_at=timezone.now() - timedelta(seconds=601))
    assert scheduler.run_due_jobs() == ["registry.expire_uploads"]


def test_it_reads_the_jobs_once_a_tick_when_none_is_due(
    settings: Any, django_assert_num_queries: Any
) -> None:
    settings.HUB_PERIODIC_JOBS = {"registry.expire_uploads": 600, "audit.run_exports": 600}
    assert sorted(scheduler.run_due_jobs()) == ["audit.run_exports", "registry.expire_uploads"]
    with django_assert_num_queries(1):  # was an UPDATE and a SELECT per job, every tick
        assert scheduler.run_due_jobs() == []


def test_only_one_claim_wins_a_period() -> None:
    assert scheduler.claim("job", 60)
    assert not scheduler.claim("job", 60)
    assert scheduler.claim("other", 60)


def test_the_scheduler_ticks_no_slower_than_half_the_shortest_period(settings: Any) -> None:
    settings.HUB_PERIODIC_JOBS = {"a": 4, "b": 3600, "c": 0}
    assert scheduler.tick_seconds() == 2
    settings.HUB_PERIODIC_JOBS = {"a": 3600}
    assert scheduler.tick_seconds() == 30


def test_the_beat_schedule_sends_registered_tasks(settings: Any) -> None:
    from hub.celery import app

    app.loader.import_default_modules()
    assert set(settings.CELERY_BEAT_SCHEDULE) == {
        "registry.collect_garbage",
        "registry.expire_uploads",
        "registry.apply_retention",
        "registry.deliver_due_webhooks",
        "audit.apply_retention",
        "audit.expire_exports",
        "audit.run_exports",
    }
    assert set(settings.CELERY_BEAT_SCHEDULE) <= set(app.tasks)


def test_it_names_every_task_module_the_embedded_scheduler_imports() -> None:
    """The scheduler imports TASK_MODULES, not celery's autodiscovery: a task module
    missing there would leave its periodic job unknown in the web workers."""
    from hub.celery import TASK_MODULES, app

    app.loader.import_default_modules()
    ours = {task.__module__ for name, task in app.tasks.items() if not name.startswith("celery.")}
    assert ours and ours <= set(TASK_MODULES)

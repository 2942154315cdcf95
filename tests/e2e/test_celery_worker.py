"""A real `hub worker` process against Redis runs a task sent to it."""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
import redis
import requests
from celery import Celery

from tests.support.databases import fresh_database
from tests.support.nodes import query, store_files
from tests.support.servers import ROOT, VENV_BIN, ensure_admin, free_port, on_this_tree, wait_http

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# A database of its own on the shared Redis, and a queue of its own in it.
REDIS_URL = os.environ.get("HUB_TEST_REDIS_URL", "redis://127.0.0.1:6379/5")


def _redis_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=2):
            return True
    except OSError:
        return False


@pytest.fixture
def worker_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    if not _redis_up():
        pytest.skip("no Redis at 127.0.0.1:6379")
    with ExitStack() as stack:
        db_env = stack.enter_context(fresh_database(tmp_path))
        env = on_this_tree({**os.environ, "HUB_DATA_DIR": str(tmp_path), **db_env})
        env.pop("DJANGO_SETTINGS_MODULE", None)
        env["HUB_REDIS_URL"] = REDIS_URL
        env.setdefault("DATABASE_URL", "")
        ensure_admin(env)
        yield env


def _hub(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(VENV_BIN / "hub"), *args], env=env, capture_output=True, text=True, check=True
    )


def test_a_worker_runs_a_garbage_collection_sent_through_redis(
    worker_env: dict[str, str], tmp_path: Path
) -> None:
    data = b"a blob no manifest will ever reference"
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    _hub(
        worker_env,
        "shell",
        "-c",
        "from registry.digests import parse_digest\n"
        "from registry.models import Repository\n"
        "from registry.services.uploads import blob_put_monolithic\n"
        "repo = Repository.objects.create(name='worker/app')\n"
        f"blob_put_monolithic(repository=repo, digest=parse_digest({digest!r}),"
        f" chunks=[{data!r}])\n",
    )
    assert [p.name for p in store_files(tmp_path)] == [digest.split(":")[1]]

    queue = f"hub-test-{uuid.uuid4().hex[:8]}"
    log = tmp_path / "worker.log"
    port = free_port()
    with open(log, "wb") as out:
        # The prefork pool: the task runs in a child process, and the parent's port
        # must still show what it counted.
        worker = subprocess.Popen(
            [str(VENV_BIN / "hub"), "worker", "--pool", "prefork", "-c", "1", "-Q", queue],
            env={**worker_env, "HUB_WORKER_METRICS_PORT": str(port)},
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=str(ROOT),
        )
    try:
        sender = Celery(broker=REDIS_URL)
        sender.send_task("registry.collect_garbage", kwargs={"grace_seconds": 0}, queue=queue)
        deadline = time.monotonic() + 60
        sql = "SELECT blobs_removed, bytes_freed FROM registry_gcrun WHERE finished_at IS NOT NULL"
        while not (runs := query(worker_env, tmp_path, sql)):
            assert worker.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        wait_http(f"http://127.0.0.1:{port}/metrics", proc=worker)
        scraped = _scrape(port, "hub_celery_tasks_total")
        while not scraped and time.monotonic() < deadline:  # counted just after the commit
            time.sleep(0.2)
            scraped = _scrape(port, "hub_celery_tasks_total")
        counts = _scrape(port)
    finally:
        worker.terminate()
        worker.wait(30)
        keys = [queue, f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}"]
        redis.Redis.from_url(REDIS_URL).delete(*keys)
    assert runs == [(1, len(data))]
    assert query(worker_env, tmp_path, "SELECT count(*) FROM registry_blob") == [(0,)]
    assert store_files(tmp_path) == []
    assert "registry.collect_garbage" in log.read_text()
    assert counts['hub_celery_tasks_total{state="SUCCESS",task="registry.collect_garbage"}'] == 1
    assert counts['hub_celery_task_duration_seconds_count{task="registry.collect_garbage"}'] == 1
    assert counts['hub_gc_runs_total{outcome="success"}'] == 1
    assert counts["hub_gc_freed_bytes_total"] == len(data)
    assert counts["hub_gc_deleted_blobs_total"] == 1


def test_a_worker_claims_and_runs_an_export_job_sent_through_redis(
    worker_env: dict[str, str], tmp_path: Path
) -> None:
    """The job is queued in the database and its id sent on commit; the worker's task
    claims it through the same function as the embedded scheduler."""
    queue = f"hub-test-{uuid.uuid4().hex[:8]}"
    started = _hub(
        worker_env,
        "shell",
        "-c",
        "import audit\n"
        "from django.contrib.auth import get_user_model\n"
        "from django.db import transaction\n"
        "from audit.export_jobs import export_job_start\n"
        "from audit.sealing import seal_pending\n"
        "from hub.celery import app\n"
        "from teams.permissions import Actor\n"
        f"app.conf.task_default_queue = {queue!r}\n"
        "actor = Actor(user=get_user_model().objects.get(username='root'), method='session')\n"
        "for i in range(5):\n"
        "    audit.record(action='manifest.push', repository='worker/app', tag=f'v{i}',"
        " actor=actor)\n"
        "seal_pending()\n"
        "with transaction.atomic():\n"
        "    job = export_job_start(actor=actor, fmt='csv', filters={})\n"
        "print(job.id)\n",
    )
    job_id = int(started.stdout.split()[-1])
    sql = "SELECT status, attempts, row_count, storage_key FROM audit_exportjob WHERE id = %s"
    assert query(worker_env, tmp_path, sql, job_id)[0][:2] == ("queued", 0)
    log = tmp_path / "worker-export.log"
    with open(log, "wb") as out:
        worker = subprocess.Popen(
            [str(VENV_BIN / "hub"), "worker", "--pool", "prefork", "-c", "1", "-Q", queue],
            env=worker_env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=str(ROOT),
        )
    try:
        deadline = time.monotonic() + 60
        while (row := query(worker_env, tmp_path, sql, job_id)[0])[0] != "done":
            assert worker.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
    finally:
        worker.terminate()
        worker.wait(30)
        keys = [queue, f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}"]
        redis.Redis.from_url(REDIS_URL).delete(*keys)
    _, attempts, row_count, key = row
    assert attempts == 1 and row_count >= 5
    assert "audit.run_export" in log.read_text()
    files = store_files(tmp_path, "objects/audit-export")
    assert [f"audit-export/{f.name}" for f in files] == [key]
    assert files[0].read_bytes().count(b"\n") == row_count + 1  # and the header


def _scrape(port: int, prefix: str = "") -> dict[str, float]:
    """Samples from a Prometheus text page, by name and labels (sorted, as the client prints)."""
    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#") and line.startswith(prefix):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples


def test_hub_beat_counts_what_it_sends(worker_env: dict[str, str], tmp_path: Path) -> None:
    """The scheduler's port shows the periodic tasks it sent (a webhook sweep every second)."""
    port = free_port()
    log = tmp_path / "beat.log"
    env = {**worker_env, "HUB_WORKER_METRICS_PORT": str(port), "HUB_WEBHOOK_SWEEP_INTERVAL": "1"}
    with open(log, "wb") as out:
        beat = subprocess.Popen(
            [str(VENV_BIN / "hub"), "beat"], env=env, stdout=out, stderr=subprocess.STDOUT,
            cwd=str(ROOT),
        )  # fmt: skip
    name = 'hub_celery_tasks_sent_total{task="registry.deliver_due_webhooks"}'
    try:
        wait_http(f"http://127.0.0.1:{port}/metrics", proc=beat)
        deadline = time.monotonic() + 30
        while _scrape(port).get(name, 0) < 2:
            assert beat.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.3)
    finally:
        beat.terminate()
        beat.wait(30)
        # What it sent went to the default queue of this test's Redis database.
        redis.Redis.from_url(REDIS_URL).delete("celery")


def test_hub_worker_needs_a_broker(tmp_path: Path) -> None:
    env = on_this_tree({**os.environ, "HUB_DATA_DIR": str(tmp_path), "HUB_REDIS_URL": ""})
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env["DATABASE_URL"] = ""
    done = subprocess.run(
        [str(VENV_BIN / "hub"), "worker"], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode != 0
    assert "HUB_REDIS_URL is not set" in done.stderr

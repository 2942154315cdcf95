"""Audit export jobs under `hub serve` without Redis: the job waits in the database, and
the embedded scheduler of whichever node runs it claims it there.

Node A takes the request and runs no exports (HUB_AUDIT_EXPORT_POLL_INTERVAL=0), then is
killed (SIGKILL, master and workers): the job it accepted is not lost with it. The job is
then left as a runner that died leaves it (claimed, its lease lapsed, half a file
written); node B, started afterwards on the same database and store, claims it again,
writes it afresh and offers one whole file, downloaded through the signed link.
"""

from __future__ import annotations

import hashlib
import os
import signal
import time
from contextlib import ExitStack
from pathlib import Path

import pytest
import requests

from tests.support.databases import fresh_database
from tests.support.nodes import NODE_ENV, assert_clean_log, execute, query, store_files
from tests.support.ocipush import Client, Image
from tests.support.servers import ADMIN_PASSWORD, ADMIN_USER, HubProcess, start_hub

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SERVE_ARGS = ["--workers", "2", "--threads", "2"]
JOBS = {"HUB_AUDIT_EXPORT_SYNC_LIMIT": "1"}


def _kill(node: HubProcess) -> None:
    """SIGKILL the gunicorn master and its workers at once, as a lost machine."""
    pid = node.proc.pid
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    for each in [pid, *map(int, children)]:
        try:
            os.kill(each, signal.SIGKILL)
        except ProcessLookupError:
            pass
    node.proc.wait(10)


def _until(what: str, check: object, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.2)
    raise AssertionError(f"not within {timeout} s: {what}")


def test_a_queued_job_outlives_its_node_and_another_node_runs_it(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    data_dir = tmp_path_factory.mktemp("export-jobs")
    http = requests.Session()
    http.auth = (ADMIN_USER, ADMIN_PASSWORD)
    with fresh_database(data_dir) as db_env, ExitStack() as stack:
        env = {**NODE_ENV, **db_env, **JOBS}
        a = start_hub(data_dir, env={**env, "HUB_AUDIT_EXPORT_POLL_INTERVAL": "0"}, args=SERVE_ARGS)
        stack.callback(a.stop)
        Client(a.url).push_image("e2e/exports", "v1", Image.random(1024, label="exports"))

        def sealed() -> int:
            return int(query(env, data_dir, "SELECT count(*) FROM audit_seal")[0][0])

        _until("the push's events are sealed", lambda: sealed() > 0)
        started = http.post(a.url + "/api/audit/exports/", data={"format": "jsonl"}, timeout=30)
        assert started.status_code == 202, started.text
        job = started.json()
        assert job["status"] == "queued" and started.headers["Location"] == job["url"]
        _kill(a)

        # What a runner that died mid-write leaves: its claim, a lapsed lease, half a file.
        dead_name = f"audit-export/{job['id']:012d}-deadrunner.jsonl"
        changed = execute(
            env, data_dir,
            "UPDATE audit_exportjob SET status = 'running', claim = 'dead', attempts = 1,"
            " lease_until = '2000-01-01 00:00:00', storage_key = %s"
            " WHERE id = %s AND status = 'queued'",
            dead_name, job["id"],
        )  # fmt: skip
        assert changed == 1  # still queued: node A never ran it
        half = data_dir / "storage" / "objects" / dead_name
        half.parent.mkdir(parents=True, exist_ok=True)
        half.write_bytes(b'{"half": "a line')

        b = start_hub(data_dir, env={**env, "HUB_AUDIT_EXPORT_POLL_INTERVAL": "1"}, args=SERVE_ARGS)
        stack.callback(b.stop)
        url = b.url + job["url"]
        _until(
            "node B has run the job", lambda: http.get(url, timeout=30).json()["status"] == "done"
        )
        done = http.get(url, timeout=30).json()
        assert done["row_count"] > 0 and done["download_url"]
        stored = query(
            env, data_dir, "SELECT attempts, claim FROM audit_exportjob WHERE id = %s", job["id"]
        )
        assert stored[0][0] == 2 and stored[0][1] != "dead"

        got = http.get(b.url + done["download_url"], timeout=30)
        assert got.status_code == 200
        assert hashlib.sha256(got.content).hexdigest() == done["sha256"]
        assert len(got.content) == done["size"]
        assert got.content.count(b"\n") == done["row_count"]
        files = store_files(data_dir, "objects/audit-export")  # the half file is gone
        assert len(files) == 1 and files[0].read_bytes() == got.content
        actions = query(
            env, data_dir,
            "SELECT action FROM audit_event WHERE action LIKE %s ORDER BY id", "audit.export%",
        )  # fmt: skip
        assert [row[0] for row in actions] == ["audit.export_start", "audit.export_download"]
        assert_clean_log(b)

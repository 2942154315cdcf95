"""Looking at what a served `hub serve` node left behind: its database, its store, its log."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from threading import Barrier
from typing import TypeVar

from tests.support.servers import HubProcess

T = TypeVar("T")

# Our nodes log every request (HUB_ACCESS_LOG=-) so that a 500 cannot hide.
NODE_ENV = {"HUB_ACCESS_LOG": "-", "HUB_LOG_LEVEL": "info"}
_ACCESS_500 = re.compile(r'" 5\d\d ')


def query(env: dict[str, str], data_dir: Path, sql: str, *params: object) -> list[tuple]:
    """Run SQL (%s placeholders) against the node's database: PostgreSQL when its env
    names one, else the embedded SQLite in its data folder."""
    url = env.get("DATABASE_URL")
    if url:
        import psycopg

        with psycopg.connect(url) as conn:
            return list(conn.execute(sql, params).fetchall())
    conn = sqlite3.connect(data_dir / "hub.sqlite3", timeout=30)
    try:
        return list(conn.execute(sql.replace("%s", "?"), params).fetchall())
    finally:
        conn.close()


def execute(env: dict[str, str], data_dir: Path, sql: str, *params: object) -> int:
    """Run a change (%s placeholders) against the node's database and commit it, as
    `query` reads; returns how many rows it changed."""
    url = env.get("DATABASE_URL")
    if url:
        import psycopg

        with psycopg.connect(url) as conn:
            return conn.execute(sql, params).rowcount
    conn = sqlite3.connect(data_dir / "hub.sqlite3", timeout=30)
    try:
        with conn:
            return conn.execute(sql.replace("%s", "?"), params).rowcount
    finally:
        conn.close()


def store_files(data_dir: Path, folder: str = "blobs") -> list[Path]:
    """Files under <data_dir>/storage/<folder> (the filesystem store)."""
    root = data_dir / "storage" / folder
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def assert_clean_log(*nodes: HubProcess) -> None:
    """No lock errors, no tracebacks, no 5xx in any node's log."""
    for node in nodes:
        log = node.log()
        assert "database is locked" not in log, f"{node.url}: SQLite lock error\n{log[-3000:]}"
        assert "Traceback" not in log, f"{node.url}: traceback in the log\n{log[-5000:]}"
        assert "Internal Server Error" not in log, f"{node.url}: 500\n{log[-5000:]}"
        bad = [line for line in log.splitlines() if _ACCESS_500.search(line)]
        assert not bad, f"{node.url}: 5xx answers:\n" + "\n".join(bad[:20])


def run_together(fn: Callable[[int], T], count: int) -> list[T]:
    """Call fn(0..count-1) on `count` threads released at the same moment; re-raise failures."""
    barrier = Barrier(count)

    def start(i: int) -> T:
        barrier.wait(timeout=30)
        return fn(i)

    with ThreadPoolExecutor(max_workers=count) as pool:
        futures = [pool.submit(start, i) for i in range(count)]
        return [f.result() for f in futures]


def flatten(items: Iterable[Iterable[T]]) -> list[T]:
    return [x for xs in items for x in xs]


def kill_node(node: HubProcess) -> None:
    """SIGKILL the gunicorn master and its workers at once, as a lost pod or machine."""
    children = Path(f"/proc/{node.proc.pid}/task/{node.proc.pid}/children").read_text().split()
    for pid in [node.proc.pid, *map(int, children)]:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    node.proc.wait(10)


_stopping: list[HubProcess] = []


def stop_soon(*nodes: HubProcess) -> None:
    """Ask nodes to stop and go on: graceful shutdown takes seconds, nobody needs to wait
    for it but `reap_stopped` (at the end of a module)."""
    for node in nodes:
        if node.proc.poll() is None:
            node.proc.send_signal(signal.SIGTERM)
        _stopping.append(node)


def reap_stopped() -> None:
    while _stopping:
        _stopping.pop().stop()  # already terminating: this only waits (or kills a stuck one)


def wait_for_lease(
    env: dict[str, str],
    data_dir: Path,
    upload_id: str,
    timeout: float = 30,
    unless: threading.Event | None = None,
) -> None:
    """Until a request holds the upload session's lease (it is streaming into it); not
    past `unless` being set (the request meant to take it has ended)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if unless is not None and unless.is_set():
            raise AssertionError(f"the request ended without taking the lease of {upload_id}")
        key = upload_id if env.get("DATABASE_URL") else upload_id.replace("-", "")  # char(32)
        rows = query(env, data_dir, "SELECT lease_token FROM registry_upload WHERE id = %s", key)
        if rows and rows[0][0]:
            return
        time.sleep(0.05)
    raise TimeoutError(f"no request took the lease of upload {upload_id}")

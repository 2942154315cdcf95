"""deploy/nginx.conf in front of two `hub serve` nodes (Debian's nginx, on loopback).

A chunked layer upload streams through to whichever node, the client's address and
request id reach Hub's audit trail, and both nodes take requests.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest
import requests

from tests.support.databases import fresh_database, postgres_base_url
from tests.support.proxy import find_nginx, start_nginx
from tests.support.servers import ADMIN_PASSWORD, ADMIN_USER, start_hub, wait_http

pytestmark = pytest.mark.e2e

MiB = 1024 * 1024
NODE_PORTS = (5023, 5024)
PROXY_PORT = 5025


@pytest.fixture
def proxy(tmp_path: Path) -> Iterator[str]:
    if find_nginx() is None:
        pytest.skip("nginx is not installed")
    nodes = [f"127.0.0.1:{port}" for port in NODE_PORTS]
    # Nothing answers yet: the nodes start in the test.
    nginx = start_nginx(tmp_path, nodes=nodes, port=PROXY_PORT, wait=False)
    try:
        yield nginx.url
    finally:
        nginx.stop()


def slowly(data: bytes, piece: int = 256 * 1024) -> Iterator[bytes]:
    for offset in range(0, len(data), piece):
        time.sleep(0.01)
        yield data[offset : offset + piece]


@pytest.mark.skipif(postgres_base_url() is None, reason="two nodes share PostgreSQL")
def test_it_streams_uploads_through_nginx_to_two_nodes(tmp_path: Path, proxy: str) -> None:
    data = os.urandom(3 * MiB)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    with fresh_database(tmp_path) as db_env:
        # One data directory: the nodes share the store and the generated keys.
        env = {**db_env, "HUB_ACCESS_LOG": "-", "HUB_LOG_FORMAT": "json"}
        shared = tmp_path / "data"
        # Both at once: start-up is mostly waiting (imports, the database).
        with ThreadPoolExecutor(2) as pool:
            starting = [pool.submit(start_hub, shared, env=env, port=port) for port in NODE_PORTS]
        nodes = [future.result() for future in starting if future.exception() is None]
        try:
            if len(nodes) < len(starting):
                raise next(f.exception() for f in starting if f.exception() is not None)  # type: ignore[misc]
            wait_http(proxy + "/healthz")
            http = requests.Session()
            http.auth = (ADMIN_USER, ADMIN_PASSWORD)
            started = http.post(f"{proxy}/v2/root/proxied/blobs/uploads/", timeout=30)
            assert started.status_code == 202, started.text
            # A generator body goes out chunked (Transfer-Encoding: chunked), as docker's.
            patched = http.patch(
                proxy + started.headers["Location"],
                data=slowly(data),
                headers={
                    "Content-Type": "application/octet-stream",
                    "X-Forwarded-For": "203.0.113.9",
                },
                timeout=60,
            )
            assert patched.status_code == 202, patched.text
            assert patched.headers["Range"] == f"0-{len(data) - 1}"
            done = http.put(
                f"{proxy}{patched.headers['Location']}?digest={digest}",
                headers={"X-Forwarded-For": "203.0.113.9", "X-Request-ID": "proxy-test-1"},
                timeout=30,
            )
            assert done.status_code == 201, done.text
            assert done.headers["X-Request-ID"] == "proxy-test-1"
            for _ in range(6):
                pulled = http.get(f"{proxy}/v2/root/proxied/blobs/{digest}", timeout=30)
                assert pulled.content == data
        finally:
            for node in nodes:
                node.stop()
        with psycopg.connect(db_env["DATABASE_URL"]) as conn:
            row = conn.execute(
                "SELECT client_address, request_id FROM audit_event WHERE action = 'blob.upload'"
            ).fetchone()
        assert row == ("203.0.113.9", "proxy-test-1")
        served = [
            [json.loads(line) for line in node.log().splitlines() if '"gunicorn.access"' in line]
            for node in nodes
        ]
        assert all(any(line["path"].startswith("/v2/") for line in log) for log in served)

"""deploy/nginx.conf in front of two `hub serve` nodes (Debian's nginx, on loopback).

A chunked layer upload streams through to whichever node, the client's address and
request id reach Hub's audit trail, and both nodes take requests.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import requests

from tests.support.databases import fresh_database, postgres_base_url
from tests.support.servers import ADMIN_PASSWORD, ADMIN_USER, ROOT, start_hub, wait_http

pytestmark = pytest.mark.e2e

MiB = 1024 * 1024
NODE_PORTS = (5023, 5024)
PROXY_PORT = 5025


def nginx_conf(directory: Path) -> Path:
    """deploy/nginx.conf with loopback addresses and private paths instead of compose's."""
    text = (ROOT / "deploy" / "nginx.conf").read_text()
    text = text.replace("web1:5000", f"127.0.0.1:{NODE_PORTS[0]}")
    text = text.replace("web2:5000", f"127.0.0.1:{NODE_PORTS[1]}")
    text = text.replace("listen 80;", f"listen 127.0.0.1:{PROXY_PORT};").replace(
        "listen [::]:80;", ""
    )
    text = text.replace("/tmp/nginx", str(directory / "nginx"))
    text = text.replace("/dev/stdout", str(directory / "access.log"))
    text = text.replace("/dev/stderr", str(directory / "error.log"))
    conf = directory / "nginx.conf"
    conf.write_text(text)
    return conf


@pytest.fixture
def proxy(tmp_path: Path) -> Iterator[str]:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        pytest.skip("nginx is not installed")
    conf = nginx_conf(tmp_path)
    proc = subprocess.Popen(
        [nginx, "-c", str(conf), "-e", str(tmp_path / "error.log"), "-g", "daemon off;"],
        stderr=subprocess.STDOUT,
        stdout=open(tmp_path / "nginx.out", "wb"),  # noqa: SIM115
    )
    try:
        yield f"http://127.0.0.1:{PROXY_PORT}"
    finally:
        proc.terminate()
        proc.wait(10)


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
        nodes = [start_hub(shared, env=env, port=NODE_PORTS[0])]
        nodes.append(start_hub(shared, env=env, port=NODE_PORTS[1], admin=False))
        try:
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

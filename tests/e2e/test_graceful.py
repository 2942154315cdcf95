"""A node told to stop (SIGTERM, as docker stop and Kubernetes do) finishes what it is doing.

A layer upload in flight completes, new connections are refused at once (so a proxy
tries another node), and what was uploaded is there after a restart.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import os
import signal
import socket
import time
from pathlib import Path

import pytest
import requests

from tests.support.databases import fresh_database
from tests.support.servers import ADMIN_PASSWORD, ADMIN_USER, start_hub

pytestmark = pytest.mark.e2e

MiB = 1024 * 1024
PORT = int(os.environ.get("HUB_TEST_GRACEFUL_PORT", "5021"))


def refused(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return False
    except ConnectionRefusedError:
        return True


def test_it_finishes_an_upload_in_flight_when_told_to_stop(tmp_path: Path) -> None:
    data = os.urandom(6 * MiB)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    auth = "Basic " + base64.b64encode(f"{ADMIN_USER}:{ADMIN_PASSWORD}".encode()).decode()
    with fresh_database(tmp_path) as db_env:
        env = {**db_env, "HUB_WEB_GRACEFUL_TIMEOUT": "60", "HUB_ACCESS_LOG": "-"}
        node = start_hub(tmp_path / "node", env=env, port=PORT, args=["--workers", "2"])
        try:
            started = requests.post(
                f"{node.url}/v2/root/graceful/blobs/uploads/",
                headers={"Authorization": auth},
                timeout=30,
            )
            assert started.status_code == 202, started.text
            location = started.headers["Location"]

            # The whole layer in one slow chunked PUT: one request, in flight at SIGTERM.
            conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=120)
            conn.putrequest("PUT", f"{location}?digest={digest}")
            conn.putheader("Authorization", auth)
            conn.putheader("Content-Type", "application/octet-stream")
            conn.putheader("Transfer-Encoding", "chunked")
            conn.endheaders()
            piece = 64 * 1024
            for offset in range(0, len(data), piece):
                chunk = data[offset : offset + piece]
                conn.send(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                time.sleep(0.03)  # about 3 s for the whole layer
                if offset == 2 * MiB:
                    node.proc.send_signal(signal.SIGTERM)
                    deadline = time.monotonic() + 5
                    while not refused(PORT) and time.monotonic() < deadline:
                        time.sleep(0.05)
                    assert refused(PORT), "a new connection was accepted after SIGTERM"
            conn.send(b"0\r\n\r\n")
            response = conn.getresponse()
            assert response.status == 201, response.read()
            assert response.getheader("Docker-Content-Digest") == digest
            conn.close()
            assert node.proc.wait(30) == 0
            assert "Traceback" not in node.log()

            node.restart()
            pulled = requests.get(
                f"{node.url}/v2/root/graceful/blobs/{digest}",
                headers={"Authorization": auth},
                timeout=30,
            )
            assert pulled.status_code == 200
            assert pulled.content == data
        finally:
            node.stop()

"""Running real clients from the e2e tests, and a loopback proxy that records what they send."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pytest


def need_tool(name: str) -> str:
    """The tool's path, or skip with the package that provides it."""
    path = shutil.which(name) or (
        f"/usr/sbin/{name}" if Path(f"/usr/sbin/{name}").exists() else None
    )
    if path is None:
        pytest.skip(f"{name} is not installed (bin/install-test-deps installs it)")
    return path


def run(
    cmd: list[str], *, timeout: float = 300, check: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a client; on failure the assertion shows its command line and output."""
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} exited with {proc.returncode}\n"
            f"--- stdout\n{proc.stdout[-4000:]}\n--- stderr\n{proc.stderr[-4000:]}"
        )
    return proc


@dataclass
class RecordedRequest:
    method: str
    target: str
    headers: dict[str, str]  # lower-cased names


_HEAD_RE = re.compile(
    rb"(GET|HEAD|POST|PUT|PATCH|DELETE) (/\S*) HTTP/1\.[01]\r\n((?:[^\r\n]*\r\n)*?)\r\n"
)


@dataclass
class RecordingProxy:
    """A TCP pass-through on 127.0.0.1 that keeps every byte a client sends, so a test
    can check the exact request heads (Transfer-Encoding, Content-Length, Content-Range)."""

    upstream_port: int
    listener: socket.socket = field(init=False)
    streams: list[bytearray] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.listener.getsockname()[1]}"

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            except OSError:
                client.close()
                continue
            record = bytearray()
            self.streams.append(record)
            threading.Thread(
                target=self._pump, args=(client, upstream, record), daemon=True
            ).start()
            threading.Thread(target=self._pump, args=(upstream, client, None), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket, record: bytearray | None) -> None:
        try:
            while data := src.recv(256 * 1024):
                if record is not None:
                    record += data
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock, how in ((dst, socket.SHUT_WR), (src, socket.SHUT_RD)):
                try:
                    sock.shutdown(how)
                except OSError:
                    pass

    def requests(self) -> list[RecordedRequest]:
        found = []
        for stream in list(self.streams):
            for match in _HEAD_RE.finditer(bytes(stream)):
                headers = {}
                for line in match.group(3).decode("latin-1").split("\r\n"):
                    if ":" in line:
                        key, value = line.split(":", 1)
                        headers[key.strip().lower()] = value.strip()
                found.append(
                    RecordedRequest(match.group(1).decode(), match.group(2).decode(), headers)
                )
        return found

    def close(self) -> None:
        self.listener.close()

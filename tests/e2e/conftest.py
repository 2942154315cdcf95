"""Fixtures for the end-to-end tests: one `hub serve` for the session, and the real clients.

Every test uses its own repository names, so they share the server safely.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from tests.e2e.clients import RecordingProxy, need_tool, run
from tests.support.databases import fresh_database, sqlite_template
from tests.support.servers import (
    ADMIN_PASSWORD,
    ADMIN_USER,
    ROBOT_CREDS,
    HubProcess,
    ensure_robot,
    start_hub,
)

# The clients work as the organisation's CI robot, with its token (the OCI behaviour of
# the core is what it is with authentication on); checks read back as the administrator.
SKOPEO_CREDS = f"--creds={ROBOT_CREDS}"
SKOPEO_SRC_CREDS = f"--src-creds={ROBOT_CREDS}"
SKOPEO_DEST_CREDS = f"--dest-creds={ROBOT_CREDS}"
PODMAN_CREDS = f"--creds={ROBOT_CREDS}"


def admin_session() -> requests.Session:
    """A requests session that sends the administrator's Basic credentials straight to /v2/."""
    session = requests.Session()
    session.auth = (ADMIN_USER, ADMIN_PASSWORD)
    return session


@dataclass
class Hub:
    """The served Hub, with a plain HTTP view of its /v2/ API (signed in as the site
    administrator, over Basic) and its access log."""

    process: HubProcess
    http: requests.Session = field(default_factory=admin_session)

    @property
    def host(self) -> str:
        return self.process.host

    @property
    def url(self) -> str:
        return self.process.url

    def get(self, path: str, **kwargs: object) -> requests.Response:
        return self.http.get(self.url + path, timeout=30, **kwargs)  # type: ignore[arg-type]

    def head(self, path: str, **kwargs: object) -> requests.Response:
        return self.http.head(self.url + path, timeout=30, **kwargs)  # type: ignore[arg-type]

    def post(self, path: str, **kwargs: object) -> requests.Response:
        return self.http.post(self.url + path, timeout=30, **kwargs)  # type: ignore[arg-type]

    def put(self, path: str, **kwargs: object) -> requests.Response:
        return self.http.put(self.url + path, timeout=30, **kwargs)  # type: ignore[arg-type]

    def access_log(self, pattern: str) -> list[re.Match[str]]:
        """Access-log lines (gunicorn's common format) whose request line matches `pattern`."""
        line_re = re.compile(
            r'"(?P<method>[A-Z]+) (?P<target>\S+) HTTP/[0-9.]+" (?P<status>\d{3}) '
        )
        found = []
        for line in self.process.log().splitlines():
            match = line_re.search(line)
            if match and re.search(pattern, f"{match['method']} {match['target']}"):
                found.append(match)
        return found

    def server_errors(self) -> list[str]:
        return [
            line
            for line in self.process.log().splitlines()
            if re.search(r'" 5\d\d |Traceback|\[ERROR\]', line)
        ]


def unique(prefix: str) -> str:
    return f"e2e/{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session", autouse=True)
def _sqlite_template_early() -> None:
    """Migrate the SQLite template while the first tests wait on their clients (it is first
    needed some modules later; PostgreSQL's template is needed at once)."""
    threading.Thread(target=sqlite_template, daemon=True).start()


@pytest.fixture(scope="session")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    """`hub serve` on loopback with a fresh database (PostgreSQL if DATABASE_URL is set)."""
    data_dir = tmp_path_factory.mktemp("hub-e2e")
    with fresh_database(data_dir) as db_env:
        process = start_hub(data_dir, env={**db_env, "HUB_ACCESS_LOG": "-"})
        ensure_robot(data_dir, db_env)
        try:
            yield Hub(process)
        finally:
            process.stop()


@pytest.fixture(autouse=True)
def _no_server_errors(request: pytest.FixtureRequest) -> Iterator[None]:
    """Whatever a client made of it, Hub must not have answered 5xx or logged a traceback."""
    if "hub" not in request.fixturenames:
        yield
        return
    server: Hub = request.getfixturevalue("hub")
    before = len(server.server_errors())
    yield
    errors = server.server_errors()[before:]
    assert not errors, "Hub logged server errors:\n" + "\n".join(errors)


# --- skopeo ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def skopeo() -> Callable[..., subprocess.CompletedProcess[str]]:
    exe = need_tool("skopeo")

    def call(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run([exe, "--insecure-policy", *args], check=check)

    return call


# --- podman ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def podman() -> Iterator[Callable[..., subprocess.CompletedProcess[str]]]:
    """podman on private, throw-away storage (vfs: no overlay or fuse needed as root here)."""
    exe = need_tool("podman")
    base = Path(tempfile.mkdtemp(prefix="hub-podman-"))
    prefix = [
        exe,
        "--root",
        str(base / "root"),
        "--runroot",
        str(base / "run"),
        "--storage-driver",
        "vfs",
        "--cgroup-manager",
        "cgroupfs",
        "--events-backend",
        "none",
    ]
    env = {**os.environ, "TMPDIR": str(base / "tmp")}
    (base / "tmp").mkdir()

    def call(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run([*prefix, *args], check=check, env=env)

    yield call
    shutil.rmtree(base, ignore_errors=True)


def busybox_context(directory: Path, nonce: str) -> Path:
    """A build context for a runnable `FROM scratch` image: Debian's static busybox and a nonce
    (so that every run pushes layers Hub has never seen)."""
    busybox = Path("/bin/busybox")
    if not busybox.exists():
        pytest.skip("/bin/busybox is missing (Debian package busybox-static)")
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copy(busybox, directory / "busybox")
    (directory / "nonce.txt").write_text(nonce + "\n")
    (directory / "Containerfile").write_text(
        "FROM scratch\n"
        "COPY busybox /bin/busybox\n"
        "COPY nonce.txt /nonce.txt\n"
        'CMD ["/bin/busybox", "echo", "hello"]\n'
    )
    return directory


# --- docker ------------------------------------------------------------------------------


@dataclass
class Dockerd:
    client: object  # docker.DockerClient
    socket: Path


@pytest.fixture(scope="session")
def dockerd() -> Iterator[Dockerd]:
    """Debian's dockerd on a private socket and data root, for this session only."""
    exe = need_tool("dockerd")
    import docker

    # Short path: the containerd socket under exec-root must fit in sun_path.
    base = Path(tempfile.mkdtemp(prefix="hub-dockerd-", dir="/tmp"))
    sock = base / "docker.sock"
    log_path = base / "dockerd.log"
    log = open(log_path, "wb")  # noqa: SIM115 - lives as long as the process
    proc = subprocess.Popen(
        [
            exe,
            "--host",
            f"unix://{sock}",
            "--data-root",
            str(base / "data"),
            "--exec-root",
            str(base / "exec"),
            "--pidfile",
            str(base / "docker.pid"),
            "--storage-driver=vfs",
            "--iptables=false",
            "--ip6tables=false",
            "--ip-masq=false",
            "--bridge=none",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    client = None
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.skip(
                    f"dockerd cannot start here (exit {proc.returncode}):\n"
                    + log_path.read_text(errors="replace")[-2000:]
                )
            if sock.exists():
                try:
                    client = docker.DockerClient(base_url=f"unix://{sock}", timeout=300)
                    client.ping()
                    break
                except Exception:
                    client = None
            if time.monotonic() > deadline:
                pytest.skip(
                    "dockerd did not answer within 60s:\n"
                    + log_path.read_text(errors="replace")[-2000:]
                )
            time.sleep(0.2)
        yield Dockerd(client, sock)
    finally:
        if client is not None:
            client.close()
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def recording_proxy(hub: Hub) -> Iterator[RecordingProxy]:
    """A second address for Hub that records the raw requests clients send through it."""
    proxy = RecordingProxy(hub.process.port)
    yield proxy
    proxy.close()

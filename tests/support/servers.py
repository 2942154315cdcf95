"""Real processes the tests start on loopback: `hub serve` nodes and moto's S3 server."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent


def on_this_tree(env: dict[str, str]) -> dict[str, str]:
    """`env` with this work tree first on PYTHONPATH, for the `hub` commands the tests run.

    The virtualenv's `hub` entry point imports whichever checkout the virtualenv was
    installed from (an editable install of another work tree, say); the tests must serve
    the code they sit next to.
    """
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and p != str(ROOT)]
    return {**env, "PYTHONPATH": os.pathsep.join([str(ROOT), *paths])}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, *, timeout: float = 30.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310 - loopback only
                return
        except urllib.error.HTTPError:
            return  # it answers, whatever it says
        except OSError as exc:
            last = exc
            time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout}s: {last}")


@dataclass
class MotoS3:
    endpoint: str
    proc: subprocess.Popen

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def start_moto(log_dir: Path) -> MotoS3:
    port = free_port()
    log = open(log_dir / f"moto-{port}.log", "wb")  # noqa: SIM115 - lives as long as the process
    proc = subprocess.Popen(
        [str(VENV_BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    endpoint = f"http://127.0.0.1:{port}"
    wait_http(endpoint + "/", proc=proc)
    return MotoS3(endpoint, proc)


@dataclass
class HubProcess:
    url: str
    port: int
    data_dir: Path
    env: dict[str, str]
    proc: subprocess.Popen
    log_path: Path
    extra_args: list[str] = field(default_factory=list)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def restart(self) -> None:
        self.stop()
        fresh = start_hub(
            self.data_dir, env=self.env, port=self.port, args=self.extra_args, admin=False
        )
        self.proc, self.log_path = fresh.proc, fresh.log_path


# The site administrator every served test node has (`hub createsuperuser --noinput`).
ADMIN_USER = "root"
ADMIN_PASSWORD = "e2e-root-password"
ADMIN_CREDS = f"{ADMIN_USER}:{ADMIN_PASSWORD}"


def ensure_admin(env: dict[str, str]) -> None:
    """Migrate and create the administrator, as an operator would before first use.

    A fresh database is a copy of a template that had this done once (tests/support/
    databases.py): copying it takes a fraction of a second, migrating several.
    """
    from tests.support.databases import PREPARED, copy_sqlite_template

    url = env.get("DATABASE_URL", "")
    data_dir = Path(env["HUB_DATA_DIR"])
    sqlite_file = data_dir / "hub.sqlite3"
    if (url and url in PREPARED) or (not url and not sqlite_file.exists()):
        if not url:
            copy_sqlite_template(sqlite_file)
        _first_secret_key(data_dir)
        return
    _migrate_and_admin(env)


def _first_secret_key(data_dir: Path) -> None:
    """The secret key `hub migrate` would have generated in the data folder: nodes started
    together on a fresh folder then agree on it (hub/settings.py generates it when absent,
    and two processes doing that at the same moment could each keep their own)."""
    try:
        fd = os.open(data_dir / "secret_key", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_urlsafe(50))


def migrate_and_make_admin(data_dir: str, env: dict[str, str]) -> None:
    full_env = on_this_tree({**os.environ, "HUB_DATA_DIR": data_dir, **env})
    full_env.pop("DJANGO_SETTINGS_MODULE", None)
    _migrate_and_admin(full_env)


def _migrate_and_admin(env: dict[str, str]) -> None:
    hub = str(VENV_BIN / "hub")
    subprocess.run([hub, "migrate", "--noinput"], env=env, check=True, capture_output=True)
    created = subprocess.run(
        [hub, "createsuperuser", "--noinput"],
        env={
            **env,
            "DJANGO_SUPERUSER_USERNAME": ADMIN_USER,
            "DJANGO_SUPERUSER_PASSWORD": ADMIN_PASSWORD,
            "DJANGO_SUPERUSER_EMAIL": "root@example.com",
        },
        capture_output=True,
        text=True,
        check=False,
    )
    if created.returncode != 0 and "already taken" not in created.stderr:
        raise RuntimeError(f"createsuperuser failed: {created.stderr}")


# A CI robot of the organisation `e2e`, which may create repositories there: the real
# clients push and pull `e2e/...` with its token, as a pipeline would.
ROBOT_USER = "e2e+ci"
ROBOT_SECRET = "hubt_" + secrets.token_urlsafe(32)
ROBOT_CREDS = f"{ROBOT_USER}:{ROBOT_SECRET}"


def ensure_robot(data_dir: Path, env: dict[str, str] | None = None) -> None:
    """Create organisation `e2e` (owned by the administrator) and its robot `ci`."""
    full_env = on_this_tree({**os.environ, "HUB_DATA_DIR": str(data_dir), **(env or {})})
    full_env.pop("DJANGO_SETTINGS_MODULE", None)
    script = (
        "from django.contrib.auth import get_user_model\n"
        "from accounts.actions import robot_create\n"
        "from accounts.models import AccessToken, hash_token\n"
        "from teams.actions import organisation_create\n"
        f"root = get_user_model().objects.get(username={ADMIN_USER!r})\n"
        "org = organisation_create(name='e2e', owner=root)\n"
        "robot = robot_create(organisation=org, name='ci', created_by=root, may_create=True)\n"
        f"secret = {ROBOT_SECRET!r}\n"
        "AccessToken.objects.create(robot=robot, name='e2e', prefix=secret[:12],"
        " secret_hash=hash_token(secret))\n"
    )
    done = subprocess.run(
        [str(VENV_BIN / "hub"), "shell", "-c", script],
        env=full_env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"creating the e2e robot failed: {done.stderr}")


def start_hub(
    data_dir: Path,
    *,
    env: dict[str, str] | None = None,
    port: int | None = None,
    args: list[str] | None = None,
    timeout: float = 60.0,
    admin: bool = True,
) -> HubProcess:
    """Start `hub serve` as a user would; `env` adds to (and overrides) the test's environment.

    With `admin` (the default) the node's database first gets the administrator
    ADMIN_USER / ADMIN_PASSWORD, for clients to push with.
    """
    port = port or free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    full_env = on_this_tree({**os.environ, "HUB_DATA_DIR": str(data_dir), **(env or {})})
    full_env.pop("DJANGO_SETTINGS_MODULE", None)
    if admin:
        ensure_admin(full_env)
    log_path = data_dir / f"hub-{port}-{time.monotonic_ns()}.log"
    log = open(log_path, "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [str(VENV_BIN / "hub"), "serve", "--bind", f"127.0.0.1:{port}", *(args or [])],
        env=full_env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=str(ROOT),
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(url + "/v2/", timeout=timeout, proc=proc)
    except Exception as exc:
        proc.kill()
        log_text = log_path.read_text(errors="replace")
        raise RuntimeError(f"hub serve did not start:\n{log_text}") from exc
    return HubProcess(url, port, data_dir, dict(env or {}), proc, log_path, list(args or []))

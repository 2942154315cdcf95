"""Three `hub serve` nodes behind deploy/nginx.conf; one is killed (SIGKILL) mid-load.

One PostgreSQL database, one S3 bucket (moto), Redis and a `hub worker` behind them, and
ten real clients pushing and pulling (skopeo and tests/support/ocipush.py) while a
node dies and comes back. A push or pull that fails is retried by the client, as CI
pipelines do; the test counts those retries and proves: every operation succeeded in
the end, every image pulls back byte for byte, and every failed request nginx logged
had been sent to the killed node (its `$upstream_addr`), so nobody else noticed.

What a killed node leaves for a moment: nginx passes a PUT (idempotent) that died with the
node on to another node (its `$upstream_addr` names both), which meets the dead request's
upload lease. Nobody renews that lease any more, so it lapses within seconds: the other
node waits for it and finishes the upload, and nobody is answered 409.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import redis
import requests

from tests.e2e.clients import need_tool, run
from tests.e2e.conftest import SKOPEO_DEST_CREDS, SKOPEO_SRC_CREDS
from tests.e2e.images import make_image, read_layout, write_image_layout
from tests.e2e.images import sha256 as layout_sha256
from tests.support.databases import fresh_database, postgres_base_url
from tests.support.nodes import NODE_ENV, assert_clean_log, kill_node
from tests.support.ocipush import Client, Image
from tests.support.proxy import Nginx, find_nginx, start_nginx
from tests.support.servers import (
    ROOT,
    VENV_BIN,
    HubProcess,
    MotoS3,
    ensure_robot,
    free_port,
    on_this_tree,
    start_hub,
    wait_http,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.s3]

KiB = 1024
REDIS_URL = os.environ.get("HUB_TEST_REDIS_URL", "redis://127.0.0.1:6379/5")
# One gunicorn worker per node, as a pod would run: a kill takes out the whole node.
SERVE_ARGS = ["--workers", "1", "--threads", "6", "--no-migrate"]
# Enough clients that a kill catches requests in flight on the victim (two cores are
# saturated with fewer: more clients only made each operation slower).
OCI_CLIENTS, SKOPEO_CLIENTS = 8, 2
ATTEMPTS = 6
LOAD_LIMIT = 45.0  # seconds for each phase of the load, at most


@dataclass
class Tally:
    """What the clients did: operations that succeeded, and each failed attempt."""

    done: list[str] = field(default_factory=list)
    retries: list[str] = field(default_factory=list)
    gave_up: list[str] = field(default_factory=list)
    pushed: dict[str, str] = field(default_factory=dict)  # repo:tag -> manifest digest
    lock: threading.Lock = field(default_factory=threading.Lock)

    def attempt(self, label: str, operation: Callable[[], None]) -> None:
        for number in range(ATTEMPTS):
            try:
                operation()
            except Exception as exc:  # noqa: BLE001 - any client error is retried
                with self.lock:
                    self.retries.append(f"{label} #{number + 1}: {str(exc)[-300:]}")
                time.sleep(0.5)
                continue
            with self.lock:
                self.done.append(label)
            return
        with self.lock:
            self.gave_up.append(label)


class _Receiver(BaseHTTPRequestHandler):
    bodies: list[bytes] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.bodies.append(body)
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def _redis_up() -> bool:
    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_timeout=2).ping())
    except redis.RedisError:
        return False


def _hub_shell(env: dict[str, str], data_dir: Path, script: str) -> None:
    full = on_this_tree({**os.environ, "HUB_DATA_DIR": str(data_dir), **env})
    full.pop("DJANGO_SETTINGS_MODULE", None)
    subprocess.run([str(VENV_BIN / "hub"), "shell", "-c", script], env=full, check=True)


def _failed(line: dict[str, object]) -> bool:
    """A request the client did not get its answer to. 401 is the sign-in challenge and a
    HEAD 404 a client asking whether a blob is there yet: both are how pushes go. A line
    without a method is a connection closed before it sent a request: nobody waited."""
    status = int(line["status"])  # type: ignore[call-overload]
    if not line["method"]:
        return False
    if status >= 500:
        return True
    return status >= 400 and status != 401 and not (status == 404 and line["method"] == "HEAD")


@pytest.fixture
def cluster(
    tmp_path: Path, moto_s3: MotoS3, s3_bucket: str
) -> Iterator[tuple[list[HubProcess], Nginx, dict[str, str], int, type[_Receiver]]]:
    if postgres_base_url() is None:
        pytest.skip("nodes share PostgreSQL: set DATABASE_URL=postgres://...")
    if find_nginx() is None:
        pytest.skip("nginx is not installed")
    need_tool("skopeo")
    if not _redis_up():
        pytest.skip(f"no Redis at {REDIS_URL}")
    redis.Redis.from_url(REDIS_URL).delete("celery")  # tasks an earlier run left
    receiver = type("Receiver", (_Receiver,), {"bodies": []})
    hooks = ThreadingHTTPServer(("127.0.0.1", 0), receiver)
    threading.Thread(target=hooks.serve_forever, daemon=True).start()
    data_dir = tmp_path / "data"
    with fresh_database(tmp_path) as db_env, ExitStack() as stack:
        stack.callback(hooks.shutdown)
        env = {
            **NODE_ENV,
            **db_env,
            "HUB_STORAGE": "s3",
            "HUB_S3_ENDPOINT_URL": moto_s3.endpoint,
            "HUB_S3_BUCKET": s3_bucket,
            "HUB_S3_ACCESS_KEY_ID": "test",
            "HUB_S3_SECRET_ACCESS_KEY": "test",
            "HUB_S3_REGION": "us-east-1",
            "HUB_REDIS_URL": REDIS_URL,
            "HUB_WEBHOOK_ALLOW_PRIVATE": "true",
        }
        # The first node migrates and makes the administrator; the rest start together.
        first = start_hub(data_dir, env=env, args=SERVE_ARGS)
        stack.callback(first.stop)
        with ThreadPoolExecutor(3) as pool:
            others = [
                pool.submit(start_hub, data_dir, env=env, args=SERVE_ARGS, admin=False)
                for _ in range(2)
            ]
            ensure_robot(data_dir, env)
            _hub_shell(
                env,
                data_dir,
                "from registry.webhooks.actions import webhook_create\n"
                "from teams.models import Organisation\n"
                f"webhook_create(url='http://127.0.0.1:{hooks.server_port}/hook',"
                " events=['push'], organisation=Organisation.objects.get(name='e2e'))\n",
            )
            nodes = [first]
            for future in others:
                nodes.append(future.result())
                stack.callback(nodes[-1].stop)
        proxy = start_nginx(
            tmp_path / "nginx", nodes=[node.host for node in nodes], port=free_port()
        )
        stack.callback(proxy.stop)
        metrics_port = free_port()
        worker_env = on_this_tree(
            {**os.environ, "HUB_DATA_DIR": str(data_dir), **env,
             "HUB_WORKER_METRICS_PORT": str(metrics_port)}
        )  # fmt: skip
        worker_env.pop("DJANGO_SETTINGS_MODULE", None)
        worker = subprocess.Popen(
            [str(VENV_BIN / "hub"), "worker", "--pool", "threads", "-c", "4"],
            env=worker_env,
            stdout=open(tmp_path / "worker.log", "wb"),  # noqa: SIM115
            stderr=subprocess.STDOUT,
            cwd=str(ROOT),
        )
        stack.callback(worker.wait, 30)
        stack.callback(worker.terminate)
        wait_http(f"http://127.0.0.1:{metrics_port}/metrics", proc=worker)
        yield nodes, proxy, env, metrics_port, receiver


def _oci_client(proxy: Nginx, tally: Tally, number: int, stop: threading.Event) -> None:
    round_ = 0
    while not stop.is_set():
        repo, tag = f"e2e/kill-oci-{number}", f"r{round_}"
        image = Image.random(300 * KiB, 40 * KiB, label=f"{number}-{round_}")

        def push_and_pull(
            repo: str = repo,
            tag: str = tag,
            image: Image = image,
            chunk: int = 128 * KiB if number % 2 else 0,  # half push layers in chunks
        ) -> None:
            # A fresh connection per attempt: after a failure, as a client would restart.
            client = Client(proxy.url)
            assert client.push_image(repo, tag, image, chunk_size=chunk) == image.digest
            pulled = client.pull_image(repo, tag)
            assert pulled.manifest == image.manifest
            assert [pulled.config, *pulled.layers] == [image.config, *image.layers]

        tally.attempt(f"oci {repo}:{tag}", push_and_pull)
        with tally.lock:
            tally.pushed[f"{repo}:{tag}"] = image.digest
        round_ += 1


def _skopeo_client(
    proxy: Nginx, tally: Tally, number: int, stop: threading.Event, workdir: Path
) -> None:
    skopeo = need_tool("skopeo")
    round_ = 0
    while not stop.is_set():
        repo, tag = f"e2e/kill-skopeo-{number}", f"r{round_}"
        image = make_image(layer_sizes=(200 * KiB, 30 * KiB))
        source = write_image_layout(workdir / f"src-{number}-{round_}", image, tag)
        ref = f"docker://{proxy.host}/{repo}:{tag}"

        def copy_there_and_back(tag: str = tag, source: Path = source, ref: str = ref) -> None:
            back = workdir / f"back-{number}-{tag}-{uuid.uuid4().hex[:6]}"
            base = [skopeo, "--insecure-policy", "copy", "--retry-times", "0"]
            run([*base, "--dest-tls-verify=false", SKOPEO_DEST_CREDS, f"oci:{source}:{tag}", ref])
            run([*base, "--src-tls-verify=false", SKOPEO_SRC_CREDS, ref, f"oci:{back}:{tag}"])
            _, theirs = read_layout(back)
            _, ours = read_layout(source)
            assert theirs == ours  # every blob, the manifest included, byte for byte

        tally.attempt(f"skopeo {repo}:{tag}", copy_there_and_back)
        with tally.lock:
            tally.pushed[f"{repo}:{tag}"] = layout_sha256(image.manifest)
        round_ += 1


def _served_by(proxy: Nginx, host: str, since: float = 0) -> int:
    return sum(
        1
        for line in proxy.access_log()
        if host in str(line["upstream"]) and _epoch(str(line["time"])) >= since
    )


def _epoch(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso).timestamp()


def _scrape(port: int) -> dict[str, float]:
    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples


def test_it_survives_a_node_killed_under_load(cluster, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    nodes, proxy, _, metrics_port, receiver = cluster
    victim = nodes[1]
    tally, stop = Tally(), threading.Event()
    started = time.monotonic()
    with ThreadPoolExecutor(OCI_CLIENTS + SKOPEO_CLIENTS) as pool:
        futures = [pool.submit(_oci_client, proxy, tally, n, stop) for n in range(OCI_CLIENTS)]
        futures += [
            pool.submit(_skopeo_client, proxy, tally, n, stop, tmp_path / "skopeo")
            for n in range(SKOPEO_CLIENTS)
        ]
        try:
            # Mid-load: all clients are at it, and some have finished an operation.
            while len(tally.done) < (OCI_CLIENTS + SKOPEO_CLIENTS) // 4:
                assert time.monotonic() - started < LOAD_LIMIT, (tally.retries, tally.gave_up)
                time.sleep(0.2)
            warm = time.monotonic() - started
            served_before = _served_by(proxy, victim.host)
            done_before = len(tally.done)
            kill_node(victim)
            killed_at = time.time()
            time.sleep(2)
            victim.restart()
            restarted_at = time.time()
            # nginx takes it back once fail_timeout (10 s) has passed: load on until then.
            while _served_by(proxy, victim.host, since=restarted_at) < 10:
                assert time.time() - restarted_at < LOAD_LIMIT, "the restarted node got no work"
                time.sleep(0.5)
            back = time.time() - restarted_at
        finally:
            stop.set()
            for future in futures:
                future.result()
    load_seconds = time.monotonic() - started

    report = (
        f"{len(tally.done)} operations in {load_seconds:.0f}s ({done_before} before the kill"
        f" at {warm:.0f}s; restarted node served again after {back:.0f}s), "
        f"{len(tally.retries)} retried attempts, gave up: {tally.gave_up}\n"
        + "\n".join(tally.retries[:20])
    )
    print(report)
    assert not tally.gave_up, report
    assert served_before > 0
    assert len(tally.done) > done_before + OCI_CLIENTS  # the load went on after the kill
    assert any(label.startswith("skopeo") for label in tally.done[done_before:]), report

    # Every image, pulled once more through the proxy, still has the bytes pushed.
    def pull_back(ref: str) -> None:
        repo, tag = ref.rsplit(":", 1)
        pulled = Client(proxy.url).pull_image(repo, tag)
        assert layout_sha256(pulled.manifest) == tally.pushed[ref], ref

    with ThreadPoolExecutor(6) as pool:
        list(pool.map(pull_back, tally.pushed))

    # Only requests that reached the killed node failed; it failed for none after its
    # restart, and the others answered everything.
    log = proxy.access_log()
    failed = [line for line in log if _failed(line)]
    others = [line for line in failed if victim.host not in str(line["upstream"])]
    assert not others, json.dumps(others[:10], indent=1)
    assert all(_epoch(str(line["time"])) >= killed_at - 1 for line in failed), failed
    # No request met a lease it could not wait out: the dead node's lapsed in time.
    conflicts = [line for line in log if int(line["status"]) == 409]  # type: ignore[call-overload]
    assert not conflicts, json.dumps(conflicts[:10], indent=1)
    passed_on = [line for line in log if "," in str(line["upstream"])]
    print(
        f"nginx: {len(log)} requests, {len(failed)} failed (all sent to {victim.host}),"
        f" {len(passed_on)} passed on to another node: "
        + ", ".join(f"{line['method']} {line['status']}" for line in passed_on)
    )
    assert_clean_log(nodes[0], nodes[2], victim)  # victim: the log of its second life

    # The worker delivered the push webhooks the nodes queued.
    deadline = time.monotonic() + 30
    while len(receiver.bodies) < 3:
        assert time.monotonic() < deadline, (tmp_path / "worker.log").read_text()[-3000:]
        time.sleep(0.2)
    counts = _scrape(metrics_port)
    assert counts['hub_celery_tasks_total{state="SUCCESS",task="registry.deliver_webhook"}'] >= 3
    assert counts['hub_webhook_deliveries_total{outcome="success"}'] >= 3
    assert {json.loads(body)["event"] for body in receiver.bodies} == {"push"}

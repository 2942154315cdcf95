"""gunicorn, embedded: threaded workers, streaming bodies, long timeouts for big layers."""

from __future__ import annotations

import os
import shutil
from typing import Any

from gunicorn.app.base import BaseApplication

from hub.env import env_bool, env_choice, env_int, env_str
from hub.metrics_files import metrics_directory


def child_exit(server: Any, worker: Any) -> None:
    """gunicorn hook (master): a worker is gone, so its live gauges must go too."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


def gunicorn_options(*, bind: str, workers: int, threads: int) -> dict[str, Any]:
    return {
        "bind": bind,
        "workers": workers,
        "threads": threads,
        "worker_class": "hub.worker.HubWorker",
        # A slow client pushing a large layer must not be killed mid-upload.
        "timeout": env_int("HUB_WEB_TIMEOUT", 3600, minimum=1),
        "graceful_timeout": env_int("HUB_WEB_GRACEFUL_TIMEOUT", 300, minimum=1),
        "keepalive": 75,
        "worker_connections": 1000,
        "accesslog": env_str("HUB_ACCESS_LOG") or None,
        "errorlog": "-",
        "loglevel": env_str("HUB_LOG_LEVEL", "info").lower(),
        "forwarded_allow_ips": env_str("HUB_TRUSTED_PROXIES", "127.0.0.1,::1"),
        "proc_name": "hub",
        # Several Hub processes may run on one machine: no shared control socket.
        "control_socket_disable": True,
        "child_exit": child_exit,
        **(
            {"logger_class": "hub.logs.JsonGunicornLogger"}
            if env_choice("HUB_LOG_FORMAT", ("plain", "json"), "plain") == "json"
            else {}
        ),
    }


class HubServer(BaseApplication):
    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            if value is not None:
                self.cfg.set(key, value)

    def load(self) -> Any:
        from hub.wsgi import application

        return application


def main(argv: list[str] | None = None) -> int:
    """`python -m hub.server --bind HOST:PORT --workers N --threads N` (what `hub serve` runs)."""
    import argparse
    import sys

    from django.core.exceptions import ImproperlyConfigured

    parser = argparse.ArgumentParser(prog="hub serve")
    parser.add_argument("--bind", required=True)
    parser.add_argument("--workers", type=int, required=True)
    parser.add_argument("--threads", type=int, required=True)
    args = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hub.settings")
    try:
        options = gunicorn_options(bind=args.bind, workers=args.workers, threads=args.threads)
    except ImproperlyConfigured as exc:
        print(f"hub: configuration error: {exc}", file=sys.stderr)
        return 2
    made = None
    if env_bool("HUB_METRICS_ENABLED", False):
        # Set before the workers fork: each counts into its own file in this directory.
        path, owned = metrics_directory()
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)
        made = path if owned else None
    try:
        HubServer(options).run()
    finally:
        if made is not None:
            shutil.rmtree(made, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

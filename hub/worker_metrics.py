"""Prometheus metrics of `hub worker` and `hub beat`, on a port of their own.

The web nodes serve /metrics through Django; a worker has no web server. With
HUB_WORKER_METRICS_PORT set, the command listens there (deploy/kubernetes scrapes the
pod by annotation). Celery's prefork pool runs tasks in child processes, so counts go
through a multiprocess directory, as under `hub serve`, and one scrape of the parent
adds up every child's. That directory must be named before prometheus_client is first
imported (it picks its value class then): `prepare` does that, before Django's checks.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import time
from typing import Any

from django.conf import settings

from hub.metrics_files import metrics_directory


def prepare() -> None:
    """Name the multiprocess directory, before anything imports prometheus_client (Django's
    system checks load the URLs, and the views import hub.metrics)."""
    if not settings.HUB_WORKER_METRICS_PORT:
        return
    if "prometheus_client.values" in sys.modules and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Metrics made already count in this process only: the children's would be lost.
        raise RuntimeError("prometheus_client was imported before the metrics directory was set")
    path, owned = metrics_directory()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)
    if owned:
        atexit.register(shutil.rmtree, path, ignore_errors=True)


def start() -> int | None:
    """Serve the metrics of this process and its children (after `prepare`); the port, or
    None when HUB_WORKER_METRICS_PORT is not set."""
    port = settings.HUB_WORKER_METRICS_PORT
    if not port:
        return None
    from prometheus_client import CollectorRegistry, start_http_server
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry(auto_describe=False)
    MultiProcessCollector(registry)
    start_http_server(port, addr=settings.HUB_WORKER_METRICS_ADDR, registry=registry)
    _count_tasks()
    return port


_started: dict[str, float] = {}


def _task_started(task_id: str | None = None, **_: Any) -> None:
    if task_id:
        _started[task_id] = time.perf_counter()


def _task_finished(
    task_id: str | None = None, task: Any = None, state: str | None = None, **_: Any
) -> None:
    from hub import metrics

    began = _started.pop(task_id or "", None)
    name = getattr(task, "name", None) or "unknown"
    metrics.TASKS.labels(name, state or "UNKNOWN").inc()
    if began is not None:
        metrics.TASK_DURATION.labels(name).observe(time.perf_counter() - began)


def _task_sent(sender: Any = None, headers: dict[str, Any] | None = None, **_: Any) -> None:
    from hub import metrics

    # Only Hub's own task names (TASK_MODULES) are ever sent: a bounded label.
    metrics.TASKS_SENT.labels(str((headers or {}).get("task") or sender)).inc()


def _count_tasks() -> None:
    from celery.signals import after_task_publish, task_postrun, task_prerun

    task_prerun.connect(_task_started, weak=False)
    task_postrun.connect(_task_finished, weak=False)
    after_task_publish.connect(_task_sent, weak=False)

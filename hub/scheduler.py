"""The embedded scheduler: periodic jobs without Redis, from a thread in each web worker.

Every `hub serve` worker runs this thread, but each job runs once per period across
all of them (and across Hub processes sharing the database): a worker runs a job only
if it moves the job's `last_started_at` forward with one conditional UPDATE, which
exactly one of them wins. With HUB_REDIS_URL set, `hub beat` schedules instead.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
import threading
import time
from collections.abc import Mapping
from datetime import timedelta

from django.conf import settings
from django.db import close_old_connections, connection
from django.db.models import Q
from django.utils import timezone

from hub.models import PeriodicJob

log = logging.getLogger(__name__)

_started_in: int | None = None
_start_lock = threading.Lock()


def claim(name: str, every: float) -> bool:
    """Whether this caller runs job `name` now (its period has passed and nobody else took it)."""
    now = timezone.now()
    due = Q(last_started_at__isnull=True) | Q(last_started_at__lte=now - timedelta(seconds=every))
    if PeriodicJob.objects.filter(due, name=name).update(last_started_at=now):
        return True
    # No row yet (the job's first period ever), or not due: the row is made only once,
    # rather than looked up by every worker on every tick.
    _, created = PeriodicJob.objects.get_or_create(name=name)
    return created and bool(PeriodicJob.objects.filter(due, name=name).update(last_started_at=now))


def _due(jobs: Mapping[str, float]) -> list[tuple[str, float]]:
    """The jobs whose period has passed, as far as one read of their rows tells: every
    worker ticks every few seconds, and most ticks find nothing due, so they cost one
    query rather than a claim per job (claim() still decides who runs one)."""
    active = {name: every for name, every in jobs.items() if every > 0}
    started = dict(
        PeriodicJob.objects.filter(name__in=active).values_list("name", "last_started_at")
    )
    now = timezone.now()
    due = []
    for name, every in active.items():
        last = started.get(name)
        if last is None or last <= now - timedelta(seconds=every):
            due.append((name, every))
    return due


def run_due_jobs() -> list[str]:
    """Run every periodic job whose period has passed; returns the names of those run here."""
    from hub.celery import TASK_MODULES, app

    for module in TASK_MODULES:
        importlib.import_module(module)
    ran = []
    for name, every in _due(settings.HUB_PERIODIC_JOBS):
        if not claim(name, every):
            continue
        ran.append(name)
        try:
            app.tasks[name].apply(throw=True)
        except Exception:
            log.exception("periodic job %s failed; it runs again next period", name)
    return ran


def tick_seconds() -> float:
    periods = [every for every in settings.HUB_PERIODIC_JOBS.values() if every > 0]
    return float(min(max(min(periods, default=30) / 2, 1), 30))


def _run(tick: float) -> None:
    while True:
        time.sleep(tick)
        try:
            run_due_jobs()
        except Exception:  # noqa: BLE001 - the database may be restarting: try next tick
            log.exception("scheduler round failed; will retry")
            connection.close()
        close_old_connections()


def ensure_scheduler() -> bool:
    """Start this process's scheduler thread, once per process."""
    global _started_in
    pid = os.getpid()
    with _start_lock:
        if _started_in == pid:
            return False
        thread = threading.Thread(
            target=_run, args=(tick_seconds(),), name="hub-scheduler", daemon=True
        )
        thread.start()
        _started_in = pid
    return True


def start_if_embedded() -> None:
    """From AppConfig.ready: in gunicorn workers, when there is no broker (no `hub beat`)."""
    if not settings.HUB_REDIS_URL and "gunicorn.workers.base" in sys.modules:
        if any(every > 0 for every in settings.HUB_PERIODIC_JOBS.values()):
            ensure_scheduler()

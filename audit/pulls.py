"""Pull events, written in batches.

Every manifest GET is recorded, but a pull changes nothing, so its event need not
share a transaction with anything: under gunicorn, pulls are queued in the worker
and a background thread inserts them together every HUB_AUDIT_PULL_FLUSH_MS
(and at the worker's exit), so a pull costs no write of its own. Outside a server
(tests, commands) or with the setting at 0, each pull is inserted at once. With
HUB_AUDIT_PULLS off, pulls are not recorded at all.
"""

from __future__ import annotations

import atexit
import logging
import threading
from typing import Any

from django.conf import settings
from django.db import close_old_connections, transaction
from django.http import HttpRequest

from audit.models import Event, insert_all
from audit.recording import values

log = logging.getLogger(__name__)

_MAX_QUEUE = 5000
_queue: list[dict[str, Any]] = []  # events' fields: no model instances
_lock = threading.Lock()
_wake = threading.Event()
_thread: threading.Thread | None = None


def record_pull(*, request: HttpRequest, **kwargs: Any) -> None:
    if not settings.HUB_AUDIT_PULLS:
        return
    event = values(request=request, **kwargs)
    interval = settings.HUB_AUDIT_PULL_FLUSH_MS / 1000
    if interval <= 0 or "gunicorn.socket" not in request.META:
        Event(**event).save(force_insert=True)
        return
    with _lock:
        _queue.append(event)
        full = len(_queue) >= _MAX_QUEUE
        _start(interval)
    if full:
        _wake.set()


def _start(interval: float) -> None:
    global _thread
    if _thread is None or not _thread.is_alive():
        _thread = threading.Thread(
            target=_loop, args=(interval,), name="hub-audit-pulls", daemon=True
        )
        _thread.start()


def flush() -> int:
    """Insert every queued pull event; returns how many."""
    with _lock:
        batch = _queue[:]
        _queue.clear()
    if not batch:
        return 0
    try:
        with transaction.atomic():
            insert_all(Event, batch)
    except Exception:
        # Put them back: the next round tries again (the database may be restarting).
        log.exception("could not write %d pull events; will retry", len(batch))
        with _lock:
            _queue[:0] = batch[: _MAX_QUEUE * 4]
        return 0
    return len(batch)


def _loop(interval: float) -> None:
    while True:
        _wake.wait(interval)
        _wake.clear()
        flush()
        close_old_connections()


atexit.register(flush)

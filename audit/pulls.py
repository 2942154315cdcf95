"""Pull events and pull counts, written in batches.

Every successful manifest GET is counted on its repository (registry Repository.pull_count,
whatever HUB_AUDIT_PULLS says) and, with HUB_AUDIT_PULLS on, recorded as an event. A pull
changes nothing, so neither need share a transaction with anything: under gunicorn, the
request only appends a small tuple to this worker's queue, and a background thread makes
the events of a batch, inserts them together and adds up each repository's pulls (one
UPDATE per repository) every HUB_AUDIT_PULL_FLUSH_MS (and at the worker's exit). Outside a
server (tests, commands) or with the setting at 0, each pull is written at once.
"""

from __future__ import annotations

import atexit
import logging
import threading
from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from django.conf import settings
from django.db import close_old_connections, transaction
from django.http import HttpRequest
from django.utils import timezone

from audit.context import actor_from_django_request, context_for, current
from audit.models import Event, insert_all
from audit.recording import actor_fields, chain_for
from registry.services.repositories import pulls_counted
from teams.permissions import Actor

log = logging.getLogger(__name__)

_MAX_QUEUE = 5000


class Pull(NamedTuple):
    """What the request path keeps of a pull: the event is made from it in the flush."""

    occurred_at: datetime
    repository: str
    tag: str
    digest: str
    recorded: bool  # False: counted only (HUB_AUDIT_PULLS off)
    actor: Actor | None = None
    client_address: str = ""
    user_agent: str = ""
    request_id: str = ""


_queue: list[Pull] = []
_lock = threading.Lock()
_wake = threading.Event()
_thread: threading.Thread | None = None


def record_pull(
    *, request: HttpRequest, repository: str, tag: str | None = None, digest: str | None = None
) -> None:
    """Count (and with HUB_AUDIT_PULLS, record) a successful manifest GET."""
    now = timezone.now()
    if settings.HUB_AUDIT_PULLS:
        ctx = current()
        if ctx is None or ctx.request is not request:
            ctx = context_for(request)
        actor = ctx.actor or actor_from_django_request(ctx.request)
        pull = Pull(
            now, repository, tag or "", digest or "", True,
            actor, ctx.client_address, ctx.user_agent, ctx.request_id,
        )  # fmt: skip
    else:
        pull = Pull(now, repository, "", "", False)
    interval = settings.HUB_AUDIT_PULL_FLUSH_MS / 1000
    if interval <= 0 or "gunicorn.socket" not in request.META:
        _write([pull])
        return
    with _lock:
        _queue.append(pull)
        full = len(_queue) >= _MAX_QUEUE
        _start(interval)
    if full:
        _wake.set()


def event_fields(pull: Pull) -> dict[str, Any]:
    """The pull's event (audit.recording.values would make the same from the request)."""
    chain, organisation = chain_for(None, pull.repository)
    return {
        "occurred_at": pull.occurred_at,
        "chain": chain,
        **actor_fields(pull.actor, pull),
        "client_address": pull.client_address,
        "user_agent": pull.user_agent,
        "request_id": pull.request_id,
        "action": "manifest.pull",
        "outcome": "success",
        "organisation": organisation,
        "repository": pull.repository[:255],
        "tag": pull.tag[:128],
        "digest": pull.digest[:200],
        "details": {},
    }


def _write(batch: Sequence[Pull]) -> None:
    counts: dict[str, tuple[int, datetime]] = {}
    for pull in batch:
        n, last = counts.get(pull.repository, (0, pull.occurred_at))
        counts[pull.repository] = (n + 1, max(last, pull.occurred_at))
    events = [event_fields(pull) for pull in batch if pull.recorded]
    with transaction.atomic():
        insert_all(Event, events)
        pulls_counted(counts=counts)


def _start(interval: float) -> None:
    global _thread
    if _thread is None or not _thread.is_alive():
        _thread = threading.Thread(
            target=_loop, args=(interval,), name="hub-audit-pulls", daemon=True
        )
        _thread.start()


def flush() -> int:
    """Write every queued pull (events and counts); returns how many."""
    with _lock:
        batch = _queue[:]
        _queue.clear()
    if not batch:
        return 0
    try:
        _write(batch)
    except Exception:
        # Put them back: the next round tries again (the database may be restarting).
        log.exception("could not write %d pulls; will retry", len(batch))
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

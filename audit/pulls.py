"""Pull events and pull counts, written in batches.

Every successful manifest GET is counted on its repository (the registry keeps the count,
Repository.pull_count, whatever HUB_AUDIT_PULLS says: it registers a counter with
count_pulls_with) and, with HUB_AUDIT_PULLS on, recorded as an event. A pull changes
nothing, so neither need share a transaction with anything: under gunicorn, the request
only appends a small tuple to this worker's queue, and a background thread writes a batch
every HUB_AUDIT_PULL_FLUSH_MS (and at the worker's exit), in one transaction: the events
as plain rows under ids taken first, their seals (hashed from those rows: the sealer
need not read them back), and each repository's pulls (one UPDATE per repository).
Outside a server (tests, commands) or with the setting at 0, each pull is written at
once and sealed later like any other event.
"""

from __future__ import annotations

import atexit
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from django.conf import settings
from django.db import close_old_connections, connections, router, transaction
from django.http import HttpRequest
from django.utils import timezone

from audit import sealing
from audit.canonical import CONTENT_FIELDS, iso
from audit.context import actor_from_django_request, context_for, current
from audit.models import Event, datetime_adapter, insert_rows, new_ids
from audit.recording import actor_fields, chain_for
from audit.sealing import seal_new
from teams.permissions import Actor

log = logging.getLogger(__name__)

_MAX_QUEUE = 5000
_WHEN = CONTENT_FIELDS.index("occurred_at")


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


# Pulls per repository in a batch: {name: (pulls, time of the last)}.
Counts = Mapping[str, tuple[int, datetime]]
# Who keeps the counts (registry's Repository.pull_count: registry.apps registers
# registry.services.repositories.pulls_counted); each is called in the flush's transaction.
_counters: list[Callable[[Counts], None]] = []


def count_pulls_with(counter: Callable[[Counts], None]) -> None:
    """Have `counter` add up each batch's pulls, in the transaction that records them."""
    if counter not in _counters:
        _counters.append(counter)


def pulls_counted(counts: Counts) -> None:
    for counter in _counters:
        counter(counts)


_queue: list[Pull] = []
_lock = threading.Lock()
# Held for a whole flush, so that the flush at a worker's exit waits for one the thread
# has in flight: the interpreter stops daemon threads mid-write once exit handlers end,
# and that batch (taken off the queue) would be lost.
_flushing = threading.Lock()
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


def _write(batch: Sequence[Pull], *, seal: bool = False) -> None:
    """Insert the batch's events (and with `seal`, their seals) and count its pulls, all
    in one transaction: a failure leaves none of it written."""
    counts: dict[str, tuple[int, datetime]] = {}
    for pull in batch:
        n, last = counts.get(pull.repository, (0, pull.occurred_at))
        counts[pull.repository] = (n + 1, max(last, pull.occurred_at))
    recorded = [pull for pull in batch if pull.recorded]
    with transaction.atomic():
        if recorded:
            rows = _insert_events(recorded)
            if seal:
                seal_new(rows)
        pulls_counted(counts)


def _insert_events(pulls: Sequence[Pull]) -> list[list[Any]]:
    """Insert the pulls' events under ids taken first, as plain rows (the fields
    audit.recording.values would make from each request); returns their content as the
    sealer hashes it (CONTENT_FIELDS order, occurred_at in canonical form)."""
    connection = connections[router.db_for_write(Event)]
    when = datetime_adapter(connection)
    chains: dict[str, tuple[str, str]] = {}
    rows: list[list[Any]] = []
    stored: list[list[Any]] = []
    for event_id, pull in zip(new_ids(Event, len(pulls)), pulls, strict=True):
        where = chains.get(pull.repository)
        if where is None:
            where = chains[pull.repository] = chain_for(None, pull.repository)
        actor = actor_fields(pull.actor, pull)
        row = [
            event_id,
            iso(pull.occurred_at),
            where[0],
            actor["actor_kind"],
            actor["actor_id"],
            actor["actor_name"],
            actor["auth_method"],
            actor["token_id"],
            pull.client_address,
            pull.user_agent,
            pull.request_id,
            "manifest.pull",
            "success",
            where[1],
            pull.repository[:255],
            pull.tag[:128],
            pull.digest[:200],
            "{}",
        ]
        rows.append(row)
        if when is not iso:
            row = row.copy()
            row[_WHEN] = when(pull.occurred_at)
        stored.append(row)
    insert_rows(Event, CONTENT_FIELDS, stored)
    return rows


def _start(interval: float) -> None:
    global _thread
    if _thread is None or not _thread.is_alive():
        _thread = threading.Thread(
            target=_loop, args=(interval,), name="hub-audit-pulls", daemon=True
        )
        _thread.start()


def flush() -> int:
    """Write every queued pull (events and counts); returns how many."""
    with _flushing:
        return _flush()


def _flush() -> int:
    with _lock:
        batch = _queue[:]
        _queue.clear()
    if not batch:
        return 0
    try:
        # Sealed in the same transaction, unless sealing is switched off here (then
        # `hub audit seal` seals every event in id order, these with the rest).
        _write(batch, seal=sealing.interval() >= 0)
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

"""Sealing: chain each new event to the one before it in its chain, shortly after insert.

Writers only INSERT events and never wait on a chain; seal_pending() then takes the
chain's lock (PostgreSQL: an advisory lock for the transaction; SQLite: the IMMEDIATE
transaction already serialises writers), continues from the chain's last seal and
seals the unsealed events in id order. It runs from `hub audit seal`, from a daemon
thread in each gunicorn worker (every HUB_AUDIT_SEAL_INTERVAL seconds, 2 by default),
and directly in tests.

The one exception is the batch of pull events (audit.pulls), a writer of its own in a
background thread: seal_new() seals it in the transaction that inserts it, from the rows
in hand, so the sealer does not read a pull per request back.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from audit.canonical import CONTENT_FIELDS, Template, iso
from audit.exporting import content_columns
from audit.models import Event, Seal, chain_start, datetime_adapter, insert_rows

log = logging.getLogger(__name__)

DEFAULT_INTERVAL = 2.0
# The thread looks back this far for unsealed events (an index range, not a scan of
# the table); every FULL_SCAN_EVERY rounds, and in `hub audit seal`, it looks at all.
RECENT_WINDOW = timedelta(hours=1)
FULL_SCAN_EVERY = 300
BATCH = 5000
_canonical = Template(CONTENT_FIELDS)
_WHEN = CONTENT_FIELDS.index("occurred_at")
_DETAILS = CONTENT_FIELDS.index("details")


def lock_chain(chain: str) -> None:
    """Hold the chain's sealing lock until the transaction ends (retention takes it too)."""
    if connection.vendor == "postgresql":
        key = int.from_bytes(hashlib.sha256(f"audit:{chain}".encode()).digest()[:8], "big")
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key - (1 << 63)])


def _pending(window: timedelta | None, since_id: int = 0):  # type: ignore[no-untyped-def]
    qs = Event.objects.filter(seal__isnull=True)
    if since_id:
        qs = qs.filter(id__gt=since_id)  # an index range: cheap however long the table
    elif window is not None:
        qs = qs.filter(occurred_at__gte=timezone.now() - window)
    return qs


SEAL_COLUMNS = ("event_id", "chain", "seq", "prev_hash", "hash", "sealed_at")
_CHAIN = CONTENT_FIELDS.index("chain")


def _head(chain: str) -> tuple[int, str]:
    """(seq, hash) of the chain's last seal; call with the chain's lock held."""
    last = Seal.objects.filter(chain=chain).order_by("-seq").values_list("seq", "hash").first()
    # Every seal may have been archived and removed: go on from the last archive.
    return last if last else chain_start(chain)


def _seals(
    chain: str, head: tuple[int, str], rows: Iterable[Sequence[Any]], sealed_at: Any
) -> list[tuple[Any, ...]]:
    """The seals (SEAL_COLUMNS) of events of one chain, given in sealing order as their
    content (CONTENT_FIELDS order, occurred_at in canonical form, details as JSON text),
    continuing from `head`. Plain tuples, hashed through the export's template: sealing
    keeps up with a pull per request."""
    seq, prev = head
    seals = []
    sha256 = hashlib.sha256
    for row in rows:
        seq += 1
        digest = sha256((prev + _canonical(row)).encode()).hexdigest()
        seals.append((row[0], chain, seq, prev, digest, sealed_at))
        prev = digest
    return seals


def seal_chain(
    chain: str, *, window: timedelta | None = None, since_id: int = 0, limit: int = BATCH
) -> int:
    """Seal up to `limit` unsealed events of one chain; returns how many."""
    with transaction.atomic():
        lock_chain(chain)
        head = _head(chain)
        pending, fields, in_sql = content_columns(_pending(window, since_id).filter(chain=chain))
        events = pending.order_by("id").values_list(*fields)[:limit]
        rows = []
        for values in events:
            row = list(values)
            if not in_sql:
                row[_WHEN] = iso(row[_WHEN])
            if row[_DETAILS] is None:
                row[_DETAILS] = "{}"
            rows.append(row)
        sealed_at = datetime_adapter(connection)(timezone.now())
        seals = _seals(chain, head, rows, sealed_at)
        insert_rows(Seal, SEAL_COLUMNS, seals)
    return len(seals)


def seal_new(rows: Sequence[Sequence[Any]]) -> int:
    """Seal events inserted in the current transaction, given as their content (as
    _seals takes it) in id order: what the writer has in hand, so nothing is read back.

    Each chain's lock is taken (in name order, as retention and the sealer take one at a
    time) and held to the end of the transaction: the seals commit, or roll back,
    together with their events. The sealer thread later finds nothing left of these.
    """
    if not connection.in_atomic_block:
        raise RuntimeError("seal_new() seals inside the transaction that inserted the events")
    by_chain: dict[str, list[Sequence[Any]]] = {}
    for row in rows:
        by_chain.setdefault(row[_CHAIN], []).append(row)
    sealed_at = datetime_adapter(connection)(timezone.now())
    seals: list[tuple[Any, ...]] = []
    for chain in sorted(by_chain):
        lock_chain(chain)
        seals += _seals(chain, _head(chain), by_chain[chain], sealed_at)
    insert_rows(Seal, SEAL_COLUMNS, seals)
    return len(seals)


def seal_pending(*, window: timedelta | None = None, since_id: int = 0) -> int:
    """Seal every unsealed event (only recent ones, with `window` or `since_id`), chain by
    chain."""
    total = 0
    chains = sorted(set(_pending(window, since_id).values_list("chain", flat=True).distinct()))
    for chain in chains:
        while True:
            sealed = seal_chain(chain, window=window, since_id=since_id)
            total += sealed
            if sealed < BATCH:
                break
    return total


# The thread seals from a little below the newest event it saw last round: an event
# whose transaction commits late (its id is older) is caught while it is within SLACK
# ids of the front, and by the hourly window scan otherwise.
SLACK = 10_000


def interval() -> float:
    return float(getattr(settings, "HUB_AUDIT_SEAL_INTERVAL", 0) or 0)


_started_in: int | None = None
_start_lock = threading.Lock()


def _run(every: float) -> None:
    rounds = 0
    front = 0
    while True:
        time.sleep(every)
        rounds += 1
        try:
            if rounds % FULL_SCAN_EVERY == 0 or not front:
                seal_pending(window=RECENT_WINDOW)
            else:
                seal_pending(since_id=max(front - SLACK, 0))
            front = Event.objects.order_by("-id").values_list("id", flat=True).first() or 0
        except Exception:  # noqa: BLE001 - keep sealing on the next round
            log.exception("audit sealing failed; will retry")
            connection.close()  # a fresh connection next round (the database may have restarted)


def ensure_sealer(every: float | None = None) -> bool:
    """Start this process's sealing thread, once per process (forks start their own)."""
    global _started_in
    pid = os.getpid()
    if _started_in == pid:
        return False
    with _start_lock:
        if _started_in == pid:
            return False
        configured = interval()
        if configured < 0:
            return False
        every = every or configured or DEFAULT_INTERVAL
        thread = threading.Thread(target=_run, args=(every,), name="audit-sealer", daemon=True)
        thread.start()
        _started_in = pid
    return True


def start_sealer_if_configured() -> None:
    """From AppConfig.ready: under gunicorn, or when HUB_AUDIT_SEAL_INTERVAL > 0.

    gunicorn workers are forked after the app is set up, so the middleware also calls
    ensure_sealer() on a worker's first request; tests leave the interval at 0.
    """
    if interval() > 0 or "gunicorn.workers.base" in sys.modules:
        ensure_sealer()

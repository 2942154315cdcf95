"""Retention: archive each chain's events older than its retention, then remove them.

For every chain with a retention (HUB_AUDIT_RETENTION_DAYS, or the organisation's own
audit_retention_days; 0 keeps events forever) run_retention():

1. picks the chain's oldest sealed events, in seq order from where the chain now starts,
   up to the first one that is not older than the cutoff (so what is removed is always
   the start of the chain) and checks their hashes and links;
2. writes them to the blob store (audit.archives), with a manifest beside them;
3. reads the archive back and checks it against what it meant to write;
4. only then, in one transaction holding the chain's sealing lock, deletes those events
   and seals (PostgreSQL's trigger allows DELETE only after
   SET LOCAL hub.audit_retention = 'on') and inserts the audit.models.Archive row that
   records the new start of the chain: its head is the anchor verification starts from.

A failure at any step removes nothing. An archive object without its Archive row is
left by a run that did not finish; its events are still in the table and the next run
writes the archive again.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from audit import archives
from audit.exporting import sealed_rows
from audit.models import Archive, Event, ImportedEvent, Seal, chain_start
from audit.sealing import lock_chain
from registry.storage import Storage, get_storage

log = logging.getLogger(__name__)

# Events per archive: an archive is built in memory, so a long backlog is archived in
# several runs of at most this many (run_retention loops until a chain is done).
MAX_EVENTS = 50_000


class RetentionError(Exception):
    """The events or the archive did not hold: nothing was removed."""


@dataclass(frozen=True)
class Plan:
    chain: str
    cutoff: datetime
    first_seq: int
    last_seq: int
    count: int

    def __str__(self) -> str:
        return f"{self.chain}: seq {self.first_seq}..{self.last_seq} ({self.count} events)"


def retention_days(chain: str) -> int:
    """Days the chain's events are kept (0: forever)."""
    kind, _, name = chain.partition(":")
    if kind == "org":
        from teams.models import Organisation

        days = (
            Organisation.objects.filter(name=name)
            .values_list("audit_retention_days", flat=True)
            .first()
        )
        if days is not None:
            return int(days)
    return int(settings.HUB_AUDIT_RETENTION_DAYS)


def plan_chain(chain: str, *, now: datetime, limit: int = MAX_EVENTS) -> Plan | None:
    """The start of the chain that is older than its retention, or None."""
    days = retention_days(chain)
    if days <= 0:
        return None
    cutoff = now - timedelta(days=days)
    start, _ = chain_start(chain)
    seals = (
        Seal.objects.filter(chain=chain, seq__gt=start)
        .order_by("seq")
        .values_list("seq", "event__occurred_at")
    )
    expected, last = start + 1, None
    for seq, occurred_at in seals.iterator(chunk_size=2000):
        # A gap (a missing event) or a young event ends the run: only old events, and
        # only an unbroken start of the chain, are ever removed.
        if seq != expected or occurred_at >= cutoff or seq - start > limit:
            break
        last, expected = seq, seq + 1
    if last is None:
        return None
    return Plan(chain, cutoff, start + 1, last, last - start)


def chains() -> list[str]:
    return sorted(set(Seal.objects.values_list("chain", flat=True).distinct()))


def plan(*, now: datetime | None = None) -> list[Plan]:
    now = now or timezone.now()
    return [p for chain in chains() if (p := plan_chain(chain, now=now)) is not None]


def _rows(chain: str, first_seq: int, last_seq: int) -> list[dict[str, Any]]:
    events = Event.objects.filter(seal__chain=chain, seal__seq__gte=first_seq)
    return list(sealed_rows(events.filter(seal__seq__lte=last_seq)))


def archive_chain(*, run: Plan, storage: Storage | None = None) -> Archive:
    """Archive one planned run of events, check it, then remove them; returns the record."""
    storage = storage or get_storage()
    _, anchor = chain_start(run.chain)
    rows = _rows(run.chain, run.first_seq, run.last_seq)
    expected = {
        "chain": run.chain,
        "first_seq": run.first_seq,
        "last_seq": run.last_seq,
        "count": run.count,
        "anchor": anchor,
    }
    problems: list[str] = []
    archives.check_rows(rows, expected, problems)
    if problems:
        raise RetentionError(f"{run}: the events do not verify, nothing removed: {problems[0]}")
    data = archives.compress(rows)
    name = archives.object_name(run.chain, run.first_seq, run.last_seq)
    doc = archives.manifest(
        rows, data, name=name, cutoff=run.cutoff.isoformat(), archived_at=timezone.now().isoformat()
    )
    storage.object_put(name, data)
    storage.object_put(archives.manifest_name(name), archives.manifest_bytes(doc))
    # Read back what the store now holds: only the bytes written (whose rows were checked
    # above) may replace the rows; comparing their sha256 is enough, no need to re-hash.
    stored = hashlib.sha256(storage.object_get(name)).hexdigest()
    if stored != doc["sha256"]:
        raise RetentionError(
            f"{run}: the archive read back does not verify: sha256 is {stored}, "
            f"written {doc['sha256']}"
        )
    return _remove(run, rows, doc)


def _remove(run: Plan, rows: list[dict[str, Any]], doc: dict[str, Any]) -> Archive:
    with transaction.atomic():
        lock_chain(run.chain)
        if chain_start(run.chain)[0] != run.first_seq - 1:
            raise RetentionError(f"{run}: another run archived this chain meanwhile")
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute("SET LOCAL hub.audit_retention = 'on'")
            params: list[str | int] = [run.chain, run.first_seq, run.last_seq]
            cursor.execute(
                "DELETE FROM audit_event WHERE id IN (SELECT event_id FROM audit_seal"
                " WHERE chain = %s AND seq BETWEEN %s AND %s)",
                params,
            )
            events = cursor.rowcount
            cursor.execute(
                "DELETE FROM audit_seal WHERE chain = %s AND seq BETWEEN %s AND %s", params
            )
            seals = cursor.rowcount
            if connection.vendor == "postgresql":
                # Only these two statements may delete, even when a caller's transaction
                # goes on after this one (a savepoint keeps a SET LOCAL until it ends).
                cursor.execute("SET LOCAL hub.audit_retention = 'off'")
        if events != run.count or seals != run.count:
            # Rolled back: the table no longer holds what was archived.
            raise RetentionError(f"{run}: removed {events} events and {seals} seals, not all")
        return Archive.objects.create(
            chain=run.chain,
            first_seq=run.first_seq,
            last_seq=run.last_seq,
            first_event_id=doc["first_event_id"],
            last_event_id=doc["last_event_id"],
            count=run.count,
            anchor=doc["anchor"],
            head=doc["head"],
            oldest=rows_time(doc["oldest"]),
            newest=rows_time(doc["newest"]),
            cutoff=run.cutoff,
            name=doc["name"],
            sha256=doc["sha256"],
            size=doc["size"],
            created_at=timezone.now(),
        )


def rows_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


@dataclass
class Result:
    planned: list[Plan]
    archived: list[Archive]
    failed: list[str]


def run_retention(*, dry_run: bool = False, now: datetime | None = None) -> Result:
    """The retention job: archive and remove every chain's expired events (with
    `dry_run`, only say what would go). One chain failing does not stop the others."""
    now = now or timezone.now()
    result = Result([], [], [])
    for chain in chains():
        while (run := plan_chain(chain, now=now)) is not None:
            result.planned.append(run)
            if dry_run:
                break
            try:
                result.archived.append(archive_chain(run=run))
            except Exception as exc:  # noqa: BLE001 - reported; the chain keeps its events
                log.exception("audit retention of %s failed", run)
                result.failed.append(f"{run}: {exc}")
                break
    return result


def archive_record(name: str) -> Archive | None:
    return Archive.objects.filter(name=name).first()


def expected_of(record: Archive) -> dict[str, Any]:
    fields = ("chain", "first_seq", "last_seq", "count", "anchor", "head", "sha256")
    return {f: getattr(record, f) for f in fields}


def import_archive(*, name: str, storage: Storage | None = None) -> int:
    """Read an archive back into audit.models.ImportedEvent, after checking it against its
    record; returns how many events. Refused if it is already imported."""
    record = archive_record(name)
    if record is None:
        raise RetentionError(f"no archive named {name} was recorded")
    if ImportedEvent.objects.filter(archive=record).exists():
        raise RetentionError(f"{name} is imported already")
    check = archives.check((storage or get_storage()).object_get(name), expected_of(record))
    if not check.ok:
        raise RetentionError(f"{name} does not verify: {check.problems[0]}")
    now = timezone.now()
    seal_fields = set(archives.SEAL_FIELDS)
    ImportedEvent.objects.bulk_create(
        [
            ImportedEvent(
                archive=record,
                event_id=row["id"],
                chain=row["chain"],
                seq=row["seq"],
                occurred_at=rows_time(row["occurred_at"]),
                prev_hash=row["prev_hash"],
                hash=row["hash"],
                content={k: v for k, v in row.items() if k not in seal_fields},
                imported_at=now,
            )
            for row in check.rows
        ],
        batch_size=2000,
    )
    return len(check.rows)

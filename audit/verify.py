"""Checking the chains: the first event altered, removed or inserted in each.

- altered: an event's content no longer hashes to its seal (or a seal no longer links
  to the one before it);
- removed: a gap in a chain's sequence numbers, or a seal whose event row is gone;
- inserted: a sequence number used twice, or an event without a seal that is older
  than events of its chain sealed more than `grace` ago (the sealer seals in id order
  within seconds, so a real event cannot stay behind).

A chain whose oldest events the retention job archived starts after its last archive,
from the head that archive recorded (audit.models.Archive; `hub audit archive verify`
checks the archive itself).

Removing the newest events together with their seals shortens a chain without a gap:
that is found only against a chain head kept elsewhere (an export, see README).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.db.models import Max
from django.utils import timezone

from audit.canonical import chain_hash
from audit.models import Archive, Event, Seal, chain_start

DEFAULT_GRACE = timedelta(minutes=5)
CHUNK = 2000


@dataclass(frozen=True)
class Problem:
    kind: str  # altered | removed | inserted
    chain: str
    event_id: int | None
    seq: int | None
    message: str

    def __str__(self) -> str:
        where = f"event {self.event_id}" if self.event_id is not None else "an event"
        seq = f", seq {self.seq}" if self.seq is not None else ""
        return f"{where} (chain {self.chain}{seq}) {self.kind}: {self.message}"


@dataclass
class Report:
    checked: int = 0
    chains: dict[str, int] = field(default_factory=dict)  # chain -> last seq checked
    heads: dict[str, str] = field(default_factory=dict)  # chain -> last hash
    starts: dict[str, int] = field(default_factory=dict)  # chain -> first seq checked
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def first(self, chain: str | None = None) -> Problem | None:
        for problem in self.problems:
            if chain is None or problem.chain == chain:
                return problem
        return None


def _seals(chain: str, since: int | None, until: int | None) -> Iterator[list[dict[str, Any]]]:
    qs = Seal.objects.filter(chain=chain)
    if since is not None:
        qs = qs.filter(seq__gte=since)
    if until is not None:
        qs = qs.filter(seq__lte=until)
    batch: list[dict[str, Any]] = []
    rows = qs.order_by("seq", "id").values("event_id", "seq", "prev_hash", "hash", "chain")
    for row in rows.iterator(chunk_size=CHUNK):
        batch.append(dict(row))
        if len(batch) >= CHUNK:
            yield batch
            batch = []
    if batch:
        yield batch


def _start(chain: str, since: int | None) -> tuple[int, str]:
    """(expected next seq, expected prev_hash) where the walk begins: after what retention
    archived, from the head it recorded (the archive itself is checked on its own)."""
    archived, head = chain_start(chain)
    if not since or since <= archived + 1:
        return archived + 1, head
    before = Seal.objects.filter(chain=chain, seq=since - 1).values_list("hash", flat=True).first()
    return since, before or ""  # "" when unknown: take the first seal's word for it


def verify_chain(
    chain: str,
    report: Report,
    *,
    since_seq: int | None = None,
    until_seq: int | None = None,
    grace: timedelta = DEFAULT_GRACE,
) -> None:
    first, prev = _start(chain, since_seq)
    expected = first
    last_seq: int | None = None
    found: list[Problem] = []

    def problem(kind: str, event_id: int | None, seq: int | None, message: str) -> None:
        found.append(Problem(kind, chain, event_id, seq, message))

    for batch in _seals(chain, since_seq, until_seq):
        events = Event.objects.in_bulk([row["event_id"] for row in batch])
        for row in batch:
            seq, event_id = row["seq"], row["event_id"]
            report.checked += 1
            if last_seq is not None and seq == last_seq:
                problem("inserted", event_id, seq, f"sequence number {seq} is used twice")
                continue
            if seq < first:
                problem("inserted", event_id, seq, f"seq {seq} is archived, yet in the table")
                continue
            if seq > expected:
                missing = f"{expected}" if seq == expected + 1 else f"{expected}-{seq - 1}"
                problem("removed", None, expected, f"seals {missing} are missing before {seq}")
                prev = ""  # the link to the missing one cannot be checked
            event = events.get(event_id)
            if event is None:
                problem("removed", event_id, seq, "the event row is missing")
            elif event.chain != chain:
                problem("altered", event_id, seq, f"the event now says chain {event.chain}")
            elif chain_hash(row["prev_hash"], event) != row["hash"]:
                problem("altered", event_id, seq, "the event does not match its seal's hash")
            if prev and row["prev_hash"] != prev:
                problem("altered", event_id, seq, "the seal does not link to the one before")
            prev, expected, last_seq = row["hash"], seq + 1, seq
    if last_seq is None and since_seq is None and until_seq is None and expected > 1:
        # Every event of the chain was archived: it ends at the last archive's head.
        last_seq = expected - 1
    if last_seq is not None:
        report.chains[chain] = last_seq
        report.heads[chain] = prev
        report.starts[chain] = first
    if since_seq is None and until_seq is None:
        _unsealed_inside(chain, grace, problem)
    report.problems.extend(found)


def _unsealed_inside(chain: str, grace: timedelta, problem: Any) -> None:
    cutoff = timezone.now() - grace
    settled = Seal.objects.filter(chain=chain, sealed_at__lte=cutoff).aggregate(m=Max("event_id"))
    newest = settled["m"]
    if newest is None:
        return
    stray = (
        Event.objects.filter(chain=chain, seal__isnull=True, id__lt=newest)
        .order_by("id")
        .values_list("id", flat=True)
        .first()
    )
    if stray is not None:
        problem("inserted", stray, None, f"unsealed, yet older than sealed event {newest}")


def chains() -> list[str]:
    names = set(Seal.objects.values_list("chain", flat=True).distinct())
    names |= set(Event.objects.values_list("chain", flat=True).distinct())
    names |= set(Archive.objects.values_list("chain", flat=True).distinct())
    return sorted(names)


def verify(
    chain: str | None = None,
    since_seq: int | None = None,
    until_seq: int | None = None,
    *,
    grace: timedelta = DEFAULT_GRACE,
) -> Report:
    report = Report()
    for name in [chain] if chain else chains():
        verify_chain(name, report, since_seq=since_seq, until_seq=until_seq, grace=grace)
    return report

"""Exports: sealed events with their seals, as CSV, JSON lines or OCSF API Activity.

Each row carries seq, prev_hash and hash, so that a JSON lines export of a chain can be
checked offline with audit/verify_export.py (standard library only).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from django.db import connections, transaction
from django.db.models import CharField, F, Func, QuerySet, TextField
from django.db.models.functions import Cast
from django.http import StreamingHttpResponse
from django.utils import timezone

from audit.canonical import CONTENT_FIELDS, Template, canonical_details, iso, parsed_details
from audit.export_sql import CopyExport
from audit.models import Event

FORMATS = ("jsonl", "csv", "ocsf")
CONTENT_TYPES = {
    "jsonl": "application/x-ndjson",
    "csv": "text/csv; charset=utf-8",
    "ocsf": "application/x-ndjson",
}
CHUNK = 2000
# Rows as sealed_rows gives them: the hashed content, then the seal.
COLUMNS = (*CONTENT_FIELDS, "seq", "prev_hash", "hash")
_WHEN = CONTENT_FIELDS.index("occurred_at")
_DETAILS = CONTENT_FIELDS.index("details")
_TOKEN = CONTENT_FIELDS.index("token_id")
CSV_HEADER = ",".join(COLUMNS) + "\r\n"


# PostgreSQL writes occurred_at in the canonical form itself (audit.canonical.iso):
# reading a timestamp into a datetime and formatting it again cost a third of a row.
_PG_ISO = "to_char(%(expressions)s AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"


Row = list[Any]  # a sealed event as sealed_tuples gives it: COLUMNS order


def in_seal_order(events: QuerySet[Event], chains: Sequence[str] | None) -> QuerySet[Event]:
    """The sealed ones of `events`, chain by chain in seal order; only of `chains` if given."""
    sealed = events.filter(seal__isnull=False)
    if chains is not None:
        sealed = sealed.filter(seal__chain__in=chains)
    return sealed.order_by("seal__chain", "seal__seq")


def sealed_tuples(events: QuerySet[Event], chains: Sequence[str] | None = None) -> Iterator[Row]:
    """Each sealed event's content plus seq, prev_hash and hash, chain by chain in order:
    a list in COLUMNS order, occurred_at in the canonical form, details as its JSON text.

    In seal order, (chain, seq) being the seals' unique index: PostgreSQL streams the rows
    from it, where ordering by the event's chain made it sort them all first. `chains`,
    when the filter is known to keep only those (an organisation's), limits the walk to
    them. Plain tuples, CHUNK rows at a time: memory stays flat.
    """
    sealed, fields, in_sql = content_columns(in_seal_order(events, chains))
    rows = sealed.values_list(*fields, "seal__seq", "seal__prev_hash", "seal__hash")
    for values in rows.iterator(chunk_size=CHUNK):
        row = list(values)
        if not in_sql:
            row[_WHEN] = iso(row[_WHEN])
        if row[_DETAILS] is None:
            row[_DETAILS] = "{}"
        yield row


def content_columns(events: QuerySet[Event]) -> tuple[QuerySet[Event], list[Any], bool]:
    """(events, the names to give values_list for CONTENT_FIELDS, whether occurred_at
    comes in canonical form): details as its text (without a converter on any column,
    Django hands the database's rows on as they come; most are "{}"), and on PostgreSQL
    occurred_at formatted by the database."""
    fields: list[Any] = list(CONTENT_FIELDS)
    events = events.annotate(details_text=Cast("details", TextField()))
    fields[_DETAILS] = "details_text"
    in_sql = connections[events.db].vendor == "postgresql"
    if in_sql:
        events = events.annotate(
            occurred_at_iso=Func(F("occurred_at"), template=_PG_ISO, output_field=CharField())
        )
        fields[_WHEN] = "occurred_at_iso"
    return events, fields, in_sql


def sealed_rows(
    events: QuerySet[Event], chains: Sequence[str] | None = None
) -> Iterator[dict[str, Any]]:
    """sealed_tuples as mappings, details parsed (for archives and checks)."""
    for row in sealed_tuples(events, chains):
        mapping = dict(zip(COLUMNS, row, strict=True))
        mapping["details"] = parsed_details(row[_DETAILS])
        yield mapping


def one_snapshot(lines: Iterator[str], using: str) -> Iterator[str]:
    """On PostgreSQL in a transaction: outside one Django declares the cursor WITH HOLD,
    and PostgreSQL then computes and stores the whole result before the first row comes
    out. Not on SQLite, where Hub's transactions begin IMMEDIATE: one would hold the
    database's only write lock for the whole export (every push, and an export job's
    lease, waiting on it), while the one SELECT reads one snapshot anyway (WAL)."""
    if connections[using].vendor != "postgresql":
        yield from lines
        return
    with transaction.atomic(using=using):
        yield from lines


def _batched(lines: Iterable[str]) -> Iterator[str]:
    """CHUNK lines joined: one write to the client each, not one per event."""
    batch: list[str] = []
    for line in lines:
        batch.append(line)
        if len(batch) >= CHUNK:
            yield "".join(batch)
            batch = []
    if batch:
        yield "".join(batch)


_canonical_line = Template(COLUMNS, end="\n")


def jsonl(rows: Iterable[Row]) -> Iterator[str]:
    return _batched(_canonical_line(row) for row in rows)


def csv_lines(rows: Iterable[Row]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    batch: list[Row] = []
    for row in rows:
        if row[_TOKEN] is None:
            row[_TOKEN] = ""
        row[_DETAILS] = canonical_details(row[_DETAILS])
        batch.append(row)
        if len(batch) >= CHUNK:
            writer.writerows(batch)
            batch = []
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    writer.writerows(batch)
    tail = buffer.getvalue()
    if tail:
        yield tail


class counted:  # noqa: N801 - used like a function
    """The rows passed through, counting them (for an export job's row count)."""

    def __init__(self, rows: Iterable[Row]) -> None:
        self.rows = iter(rows)
        self.count = 0

    def __iter__(self) -> Iterator[Row]:
        for row in self.rows:
            self.count += 1
            yield row


def lines(fmt: str, rows: Iterable[Row]) -> Iterator[str]:
    """The export's text, in CHUNK-row pieces, from rows of sealed_tuples."""
    if fmt == "csv":
        return csv_lines(rows)
    if fmt == "ocsf":
        from audit.ocsf import ocsf_lines

        return _batched(ocsf_lines(rows))
    return jsonl(rows)


class PythonExport:
    """The lines of `fmt` written here from sealed_tuples; `count` says how many events
    have gone by."""

    def __init__(self, fmt: str, events: QuerySet[Event], chains: Sequence[str] | None) -> None:
        self.rows = counted(sealed_tuples(events, chains))
        self.lines = lines(fmt, self.rows)

    @property
    def count(self) -> int:
        return self.rows.count

    def __iter__(self) -> Iterator[str]:
        return self.lines


def stream(
    fmt: str, events: QuerySet[Event], chains: Sequence[str] | None = None
) -> PythonExport | CopyExport:
    """The export's text in pieces (iterate it in one_snapshot), counting the events. On
    PostgreSQL the database writes the lines (audit.export_sql); the same bytes."""
    if connections[events.db].vendor != "postgresql":
        return PythonExport(fmt, events, chains)
    header = CSV_HEADER if fmt == "csv" else ""
    return CopyExport(fmt, in_seal_order(events, chains), COLUMNS, header=header)


def render(fmt: str, events: QuerySet[Event], chains: Sequence[str] | None = None) -> Iterator[str]:
    return one_snapshot(iter(stream(fmt, events, chains)), events.db)


def download(fmt: str, events: QuerySet[Event], chains: Sequence[str] | None = None) -> Any:
    """The export as a file download (the API and the web UI answer the same)."""
    response = StreamingHttpResponse(render(fmt, events, chains), content_type=CONTENT_TYPES[fmt])
    stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
    extension = "csv" if fmt == "csv" else "jsonl"
    response["Content-Disposition"] = f'attachment; filename="audit-{stamp}.{extension}"'
    return response

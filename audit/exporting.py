"""Exports: sealed events with their seals, as CSV, JSON lines or OCSF API Activity.

Each row carries seq, prev_hash and hash, so that a JSON lines export of a chain can be
checked offline with audit/verify_export.py (standard library only).
"""

from __future__ import annotations

import csv
import io
import json
import operator
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

from django.db import connections, transaction
from django.db.models import CharField, F, Func, QuerySet, TextField
from django.db.models.functions import Cast

from audit.canonical import CONTENT_FIELDS, canonical, iso
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


# PostgreSQL writes occurred_at in the canonical form itself (audit.canonical.iso):
# reading a timestamp into a datetime and formatting it again cost a third of a row.
_PG_ISO = "to_char(%(expressions)s AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"


def sealed_rows(
    events: QuerySet[Event], chains: Sequence[str] | None = None
) -> Iterator[dict[str, Any]]:
    """Each sealed event's content plus seq, prev_hash and hash, chain by chain in order.

    In seal order, (chain, seq) being the seals' unique index: PostgreSQL streams the rows
    from it, where ordering by the event's chain made it sort them all first. `chains`,
    when the filter is known to keep only those (an organisation's), limits the walk to
    them. Plain tuples, CHUNK rows at a time: memory stays flat.
    """
    sealed = events.filter(seal__isnull=False)
    if chains is not None:
        sealed = sealed.filter(seal__chain__in=chains)
    fields: list[Any] = list(CONTENT_FIELDS)
    # details as its text: without a converter on any column, Django hands the database's
    # rows on as they come; most are "{}".
    sealed = sealed.annotate(details_text=Cast("details", TextField()))
    fields[_DETAILS] = "details_text"
    in_sql = connections[events.db].vendor == "postgresql"
    if in_sql:
        sealed = sealed.annotate(
            occurred_at_iso=Func(F("occurred_at"), template=_PG_ISO, output_field=CharField())
        )
        fields[_WHEN] = "occurred_at_iso"
    rows = sealed.order_by("seal__chain", "seal__seq").values_list(
        *fields, "seal__seq", "seal__prev_hash", "seal__hash"
    )
    loads = json.loads
    for values in rows.iterator(chunk_size=CHUNK):
        row = dict(zip(COLUMNS, values, strict=True))
        if not in_sql:
            row["occurred_at"] = iso(values[_WHEN])
        details = values[_DETAILS]
        parsed = {} if details is None or details == "{}" else loads(details)
        row["details"] = {} if parsed is None else parsed
        yield row


def one_snapshot(lines: Iterator[str], using: str) -> Iterator[str]:
    """In a transaction: outside one Django declares the cursor WITH HOLD, and PostgreSQL
    then computes and stores the whole result before the first row comes out."""
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


# canonical(row) for a row of sealed_rows, written field by field into a template of its
# sorted keys: what the JSON encoder writes for each value, at two thirds of its cost.
_SORTED = sorted(COLUMNS)
_TEMPLATE = "{" + ",".join(f'"{key}":%s' for key in _SORTED) + "}\n"
_string = json.encoder.encode_basestring  # the canonical encoder's own, ensure_ascii off


def _canonical_line(row: dict[str, Any]) -> str:
    values = []
    for key in _SORTED:
        value = row[key]
        if value.__class__ is str:
            values.append(_string(value))
        elif value.__class__ is int:
            values.append(int.__repr__(value))
        elif value is None:
            values.append("null")
        else:
            values.append(canonical(value))
    return _TEMPLATE % tuple(values)


def jsonl(rows: Iterable[dict[str, Any]]) -> Iterator[str]:
    return _batched(_canonical_line(row) for row in rows)


def csv_lines(rows: Iterable[dict[str, Any]]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    details = COLUMNS.index("details")
    pick = operator.itemgetter(*COLUMNS)
    for n, row in enumerate(rows, 1):
        values = ["" if value is None else value for value in pick(row)]
        values[details] = canonical(row["details"])
        writer.writerow(values)
        if n % CHUNK == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    tail = buffer.getvalue()
    if tail:
        yield tail


# OCSF API Activity (class 6003): activity by what the action does.
_CREATE = {"blob.upload", "blob.mount", "manifest.push", "token.create", "robot.create"}
_READ = {"manifest.pull", "auth.token_issued"}
_DELETE = {"tag.delete", "manifest.delete", "blob.delete", "token.revoke"}


def _activity(action: str) -> tuple[int, str]:
    verb = action.rsplit(".", 1)[-1]
    if action in _CREATE or verb in ("create", "add", "enable"):
        return 1, "Create"
    if action in _READ:
        return 2, "Read"
    if action in _DELETE or verb in ("delete", "remove", "disable"):
        return 4, "Delete"
    if verb in ("update", "set", "move"):
        return 3, "Update"
    return 99, "Other"


_MAPPED = {"actor_kind", "actor_id", "actor_name", "auth_method", "client_address"}
_MAPPED |= {"user_agent", "request_id", "action", "outcome", "occurred_at", "id"}


def ocsf(row: dict[str, Any]) -> dict[str, Any]:
    activity_id, activity_name = _activity(row["action"])
    when = datetime.fromisoformat(row["occurred_at"].replace("Z", "+00:00"))
    success = row["outcome"] == "success"
    event: dict[str, Any] = {
        "class_uid": 6003,
        "class_name": "API Activity",
        "category_uid": 6,
        "category_name": "Application Activity",
        "activity_id": activity_id,
        "activity_name": activity_name,
        "type_uid": 6003 * 100 + activity_id,
        "severity_id": 1 if success else 3,
        "time": int(when.timestamp() * 1000),
        "status": "Success" if success else "Failure",
        "status_id": 1 if success else 2,
        "status_detail": row["outcome"],
        "actor": {
            "user": {
                "name": row["actor_name"],
                "uid": row["actor_id"],
                "type": row["actor_kind"],
            },
            "authorizations": [{"decision": row["outcome"]}],
        },
        "src_endpoint": {"ip": row["client_address"]},
        "http_request": {"user_agent": row["user_agent"], "uid": row["request_id"]},
        "api": {"operation": row["action"], "request": {"uid": row["request_id"]}},
        "metadata": {
            "uid": str(row["id"]),
            "version": "1.1.0",
            "product": {"name": "Hub", "vendor_name": "Hub"},
            "log_name": row["chain"],
        },
        "unmapped": {k: v for k, v in row.items() if k not in _MAPPED},
    }
    if row["auth_method"]:
        event["actor"]["user"]["credential_uid"] = row["auth_method"]
    if row["repository"]:
        event["resources"] = [{"type": "repository", "name": row["repository"]}]
    return event


def ocsf_lines(rows: Iterable[dict[str, Any]]) -> Iterator[str]:
    dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
    return _batched(dumps(ocsf(row)) + "\n" for row in rows)


class counted:  # noqa: N801 - used like a function
    """The rows passed through, counting them (for an export job's row count)."""

    def __init__(self, rows: Iterable[dict[str, Any]]) -> None:
        self.rows = iter(rows)
        self.count = 0

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for row in self.rows:
            self.count += 1
            yield row


def lines(fmt: str, rows: Iterable[dict[str, Any]]) -> Iterator[str]:
    if fmt == "csv":
        return csv_lines(rows)
    if fmt == "ocsf":
        return ocsf_lines(rows)
    return jsonl(rows)


def render(fmt: str, events: QuerySet[Event], chains: Sequence[str] | None = None) -> Iterator[str]:
    return one_snapshot(lines(fmt, sealed_rows(events, chains)), events.db)

"""Exports: sealed events with their seals, as CSV, JSON lines or OCSF API Activity.

Each row carries seq, prev_hash and hash, so that a JSON lines export of a chain can be
checked offline with audit/verify_export.py (standard library only).
"""

from __future__ import annotations

import csv
import io
import json
import operator
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from django.db.models import QuerySet

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


def sealed_rows(events: QuerySet[Event]) -> Iterator[dict[str, Any]]:
    """Each sealed event's content plus seq, prev_hash and hash, chain by chain in order.

    Plain tuples from a server-side cursor (PostgreSQL), CHUNK rows at a time: no model
    instances, so memory stays flat and a row costs little more than its serialisation.
    """
    rows = (
        events.filter(seal__isnull=False)
        .order_by("chain", "seal__seq")
        .values_list(*CONTENT_FIELDS, "seal__seq", "seal__prev_hash", "seal__hash")
    )
    for values in rows.iterator(chunk_size=CHUNK):
        row = dict(zip(COLUMNS, values, strict=True))
        row["occurred_at"] = iso(values[_WHEN])
        if values[_DETAILS] is None:
            row["details"] = {}
        yield row


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


def jsonl(rows: Iterable[dict[str, Any]]) -> Iterator[str]:
    return _batched(canonical(row) + "\n" for row in rows)


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


def render(fmt: str, events: QuerySet[Event]) -> Iterator[str]:
    rows = sealed_rows(events)
    if fmt == "csv":
        return csv_lines(rows)
    if fmt == "ocsf":
        return ocsf_lines(rows)
    return jsonl(rows)

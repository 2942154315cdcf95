"""The exact bytes a seal hashes: an event's content as canonical JSON.

Keep in step with audit/verify_export.py, which repeats this with the standard library
only so that an export can be checked anywhere.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

GENESIS = "0" * 64

CONTENT_FIELDS = (
    "id",
    "occurred_at",
    "chain",
    "actor_kind",
    "actor_id",
    "actor_name",
    "auth_method",
    "token_id",
    "client_address",
    "user_agent",
    "request_id",
    "action",
    "outcome",
    "organisation",
    "repository",
    "tag",
    "digest",
    "details",
)


def iso(value: datetime) -> str:
    """UTC, microseconds always: 2026-01-02T03:04:05.000006Z."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def content(event: Any) -> dict[str, Any]:
    """The hashed fields of an event (a model instance or a mapping of its values)."""
    get = event.get if isinstance(event, Mapping) else lambda f: getattr(event, f)
    data = {f: get(f) for f in CONTENT_FIELDS}
    if isinstance(data["occurred_at"], datetime):
        data["occurred_at"] = iso(data["occurred_at"])
    if data["details"] is None:
        data["details"] = {}
    return data


# What json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False) does,
# without making a new encoder for every event.
_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical(data: Mapping[str, Any]) -> str:
    return _ENCODER.encode(data)


def chain_hash(prev_hash: str, event: Any) -> str:
    return hashlib.sha256((prev_hash + canonical(content(event))).encode()).hexdigest()

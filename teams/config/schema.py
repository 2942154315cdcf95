"""The JSON Schema of an organisation's configuration document (also in schema.json).

A section left out of a document is not managed by it: apply leaves it alone. A field
left out of an item is left as it is. `python -m teams.config.schema` rewrites schema.json.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SCHEMA_PATH = Path(__file__).with_name("schema.json")

_NAME = {"type": "string", "pattern": r"^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$", "maxLength": 64}
_TEXT = {"type": "string"}
_LEVEL = {"enum": ["read", "write", "admin"]}
_PATTERNS = {"type": "array", "items": {"type": "string", "minLength": 1}}


def _object(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": required or [],
        "additionalProperties": False,
    }


def _subject(extra: dict[str, Any], required: list[str]) -> dict[str, Any]:
    """A grant names exactly one user (name or e-mail), team or robot."""
    subjects = {"user": _TEXT, "team": _NAME, "robot": _NAME}
    item = _object({**subjects, **extra}, required)
    item["oneOf"] = [{"required": [name]} for name in subjects]
    return item


_RETENTION = _object(
    {
        "enabled": {"type": "boolean"},
        "keep_last": {"type": ["integer", "null"], "minimum": 0},
        "keep_patterns": _PATTERNS,
        "remove_older_than_days": {"type": ["integer", "null"], "minimum": 1},
    }
)
_POLICY = {
    "oneOf": [
        {"type": "null"},
        _object(
            {"immutable_tags": _PATTERNS, "retention": {"oneOf": [{"type": "null"}, _RETENTION]}}
        ),
    ]
}
_SECRET = {
    "description": "Where the secret is read from when the document is applied; never inline.",
    "oneOf": [
        _object({"env": {"type": "string", "minLength": 1}}, ["env"]),
        _object({"file": {"type": "string", "minLength": 1}}, ["file"]),
    ],
}

SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "/api/config/schema.json",
    "title": "Hub organisation configuration",
    **_object(
        {
            "version": {"const": 1},
            "organisation": _NAME,
            "display_name": _TEXT,
            "description": _TEXT,
            "members": {
                "type": "array",
                "items": _object({"user": _TEXT, "role": {"enum": ["owner", "member"]}}, ["user"]),
            },
            "teams": {
                "type": "array",
                "items": _object(
                    {
                        "name": _NAME,
                        "description": _TEXT,
                        "may_create_repositories": {"type": "boolean"},
                        "members": {
                            "type": "array",
                            "items": _object(
                                {"user": _TEXT, "role": {"enum": ["member", "maintainer"]}},
                                ["user"],
                            ),
                        },
                    },
                    ["name"],
                ),
            },
            "robots": {
                "type": "array",
                "items": _object(
                    {
                        "name": _NAME,
                        "description": _TEXT,
                        "may_create_repositories": {"type": "boolean"},
                        "organisation_admin": {"type": "boolean"},
                    },
                    ["name"],
                ),
            },
            "repositories": {
                "type": "array",
                "items": _object(
                    {
                        "name": {"type": "string", "minLength": 1},
                        "description": _TEXT,
                        "visibility": {"enum": ["private", "public"]},
                        "policy": _POLICY,
                    },
                    ["name"],
                ),
            },
            "grants": {
                "type": "array",
                "items": _subject(
                    {"repository": {"type": "string", "minLength": 1}, "level": _LEVEL},
                    ["repository", "level"],
                ),
            },
            "default_grants": {"type": "array", "items": _subject({"level": _LEVEL}, ["level"])},
            "policy": _POLICY,
            "quota_bytes": {"type": ["integer", "null"], "minimum": 0},
            "webhooks": {
                "type": "array",
                "items": _object(
                    {
                        "url": {"type": "string", "pattern": "^https?://", "maxLength": 2000},
                        "repository": {"type": "string", "minLength": 1},
                        "events": {
                            "type": "array",
                            "items": {"enum": ["push", "tag_delete", "pull"]},
                            "uniqueItems": True,
                        },
                        "enabled": {"type": "boolean"},
                        "secret": _SECRET,
                    },
                    ["url"],
                ),
            },
        },
        ["version", "organisation"],
    ),
}


def schema_text() -> str:
    return json.dumps(SCHEMA, indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    SCHEMA_PATH.write_text(schema_text())

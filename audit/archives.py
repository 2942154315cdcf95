"""Audit archives: a run of a chain's oldest sealed events as gzip-compressed JSON lines.

Each line is what `hub audit export --format jsonl` writes for the event: its hashed
content plus seq, prev_hash and hash. The first line's prev_hash is the chain's anchor
(the hash before the archive); a manifest beside it (NAME.manifest.json) and the
database's audit.models.Archive row hold the counts, the seq range, the anchor and head
and the sha256 of the compressed bytes. An archive checks with this module, or offline
with `zcat NAME.jsonl.gz | python3 verify_export.py - --anchor CHAIN=ANCHOR`.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from audit import verify_export
from audit.canonical import canonical

FORMAT = "hub-audit-archive/1"
PREFIX = "audit-archive"
SUFFIX = ".jsonl.gz"
SEAL_FIELDS = ("seq", "prev_hash", "hash")


def object_name(chain: str, first_seq: int, last_seq: int) -> str:
    """audit-archive/org/acme/000000000001-000000000250.jsonl.gz"""
    folder = chain.replace(":", "/", 1)
    return f"{PREFIX}/{folder}/{first_seq:012d}-{last_seq:012d}{SUFFIX}"


def manifest_name(name: str) -> str:
    return name.removesuffix(SUFFIX) + ".manifest.json"


def compress(rows: Iterable[Mapping[str, Any]]) -> bytes:
    text = "".join(canonical(row) + "\n" for row in rows)
    # mtime 0: the same events always make the same bytes (and the same sha256).
    return gzip.compress(text.encode(), mtime=0)


def manifest(rows: list[dict[str, Any]], data: bytes, **extra: Any) -> dict[str, Any]:
    first, last = rows[0], rows[-1]
    return {
        "format": FORMAT,
        "chain": first["chain"],
        "first_seq": first["seq"],
        "last_seq": last["seq"],
        "count": len(rows),
        "first_event_id": first["id"],
        "last_event_id": last["id"],
        "anchor": first["prev_hash"],
        "head": last["hash"],
        "oldest": min(row["occurred_at"] for row in rows),
        "newest": max(row["occurred_at"] for row in rows),
        "sha256": hashlib.sha256(data).hexdigest(),
        "size": len(data),
        **extra,
    }


def manifest_bytes(doc: Mapping[str, Any]) -> bytes:
    return (json.dumps(doc, sort_keys=True, indent=2) + "\n").encode()


@dataclass
class Check:
    """What checking an archive found: its rows and any problems (empty when it holds)."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _rows(data: bytes, check: Check) -> None:
    try:
        text = gzip.decompress(data).decode("utf-8")
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        check.problems.append(f"not a gzip-compressed UTF-8 file: {exc}")
        return
    for number, line in enumerate(text.splitlines(), 1):
        try:
            row = json.loads(line)
        except ValueError:
            check.problems.append(f"line {number}: not JSON")
            continue
        if not isinstance(row, dict) or not all(f in row for f in (*SEAL_FIELDS, "chain", "id")):
            check.problems.append(f"line {number}: not an archived event")
            continue
        check.rows.append(row)


def check_rows(
    rows: list[dict[str, Any]], expected: Mapping[str, Any], problems: list[str]
) -> None:
    """Each row hashes to its seal and links to the one before from the anchor (what
    verify_export checks of any export), and the run is exactly the one `expected` (a
    manifest or an Archive's fields) describes."""
    chain, anchor = expected.get("chain"), expected.get("anchor")
    for row in rows:
        if row["chain"] != chain:
            problems.append(f"event {row['id']} (seq {row['seq']}): not of chain {chain}")
            return
    if rows and expected.get("first_seq") not in (None, rows[0]["seq"]):
        problems.append(
            f"the archive starts at seq {rows[0]['seq']}, expected seq "
            f"{expected['first_seq']} (removed or inserted)"
        )
    anchors = {str(chain): str(anchor)} if anchor is not None else {}
    found, _ = verify_export.check_rows(enumerate(rows, 1), None, False, anchors)
    problems += found
    summary = {
        "count": len(rows),
        "last_seq": rows[-1]["seq"] if rows else None,
        "head": rows[-1]["hash"] if rows else None,
    }
    for key, value in summary.items():
        if key in expected and expected[key] != value:
            problems.append(f"{key} is {value}, the record says {expected[key]}")


def check(data: bytes, expected: Mapping[str, Any]) -> Check:
    """Check an archive's bytes against what was recorded about it (sha256, chain, seq
    range, anchor, head, count); only against itself when `expected` is empty."""
    result = Check()
    digest = hashlib.sha256(data).hexdigest()
    if expected.get("sha256") and expected["sha256"] != digest:
        result.problems.append(f"sha256 is {digest}, the record says {expected['sha256']}")
    _rows(data, result)
    if not result.rows and not result.problems:
        result.problems.append("the archive holds no events")
    if result.rows:
        own = {"chain": result.rows[0]["chain"], "anchor": result.rows[0]["prev_hash"]}
        own["first_seq"] = result.rows[0]["seq"]
        check_rows(result.rows, {**own, **expected}, result.problems)
    return result

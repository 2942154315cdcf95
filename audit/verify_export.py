#!/usr/bin/env python3
"""Check a JSON lines export of Hub's audit trail, offline, with the standard library only.

    python3 verify_export.py audit.jsonl [--head CHAIN=HASH ...] [--anchor CHAIN=HASH ...]
                             [--allow-gaps]

Each line is one event's content plus its seal: seq, prev_hash and hash. For every
line the script recomputes hash = sha256(prev_hash + canonical JSON of the content)
and, chain by chain in seq order, checks that each line links to the one before it
(prev_hash == the previous hash, seq contiguous, the first seq 1 starting from 64
zeros). --head CHAIN=HASH checks a chain ends at a head you wrote down earlier (so
that removing the newest events shows too). --anchor CHAIN=HASH checks a chain that
starts after events the retention job archived: its first line may have any seq and
must follow HASH (the anchor in the archive's manifest, or an earlier archive's head).
The file may be gzip-compressed (a retention archive) or `-` for standard input.
Exit status 0 when all holds, 1 otherwise,
naming the first event that does not.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import sys
from collections.abc import Iterable, Iterator
from typing import Any

GENESIS = "0" * 64
SEAL_FIELDS = ("seq", "prev_hash", "hash")


def canonical(data: dict[str, Any]) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def line_hash(row: dict[str, Any]) -> str:
    content = {k: v for k, v in row.items() if k not in SEAL_FIELDS}
    return hashlib.sha256((row["prev_hash"] + canonical(content)).encode()).hexdigest()


def check(
    lines: Iterable[str],
    heads: dict[str, str] | None = None,
    allow_gaps: bool = False,
    anchors: dict[str, str] | None = None,
) -> tuple[list[str], dict[str, tuple[int, str]]]:
    """A list of problems (empty when the export holds) and {chain: (last seq, hash)}."""
    problems: list[str] = []

    def parsed() -> Iterator[tuple[int, Any]]:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                yield number, json.loads(line)
            except ValueError:
                problems.append(f"line {number}: not JSON")

    found, last = check_rows(parsed(), heads, allow_gaps, anchors)
    return problems + found, last


def check_rows(
    rows: Iterable[tuple[int, Any]],
    heads: dict[str, str] | None = None,
    allow_gaps: bool = False,
    anchors: dict[str, str] | None = None,
) -> tuple[list[str], dict[str, tuple[int, str]]]:
    """check() of rows already parsed, each with its line number."""
    problems: list[str] = []
    last: dict[str, tuple[int, str]] = {}
    for number, row in rows:
        chain, seq, event = row.get("chain"), row.get("seq"), row.get("id")
        where = f"line {number}: event {event} (chain {chain}, seq {seq})"
        if line_hash(row) != row.get("hash"):
            problems.append(f"{where} altered: content does not match its hash")
        previous = last.get(chain)
        if previous is None and chain in (anchors or {}):
            if row["prev_hash"] != (anchors or {})[chain]:
                problems.append(f"{where} altered: it does not follow the anchor")
        elif previous is None:
            if seq == 1 and row["prev_hash"] != GENESIS:
                problems.append(f"{where} altered: the first seal must follow {GENESIS[:8]}...")
            elif seq != 1 and not allow_gaps:
                problems.append(f"{where} removed: the chain starts at seq {seq}, not 1")
        else:
            prev_seq, prev_hash = previous
            if seq == prev_seq:
                problems.append(f"{where} inserted: seq {seq} appears twice")
            elif seq != prev_seq + 1:
                if not allow_gaps:
                    problems.append(f"{where} removed: seq {prev_seq + 1}..{seq - 1} missing")
            elif row["prev_hash"] != prev_hash:
                problems.append(f"{where} altered: does not link to seq {prev_seq}")
        last[chain] = (seq, row.get("hash"))
    for chain, head in (heads or {}).items():
        if chain not in last or last[chain][1] != head:
            problems.append(f"chain {chain} removed: it does not end at the head {head}")
    return problems, last


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("export", help="a JSON lines export (hub audit export --format jsonl)")
    parser.add_argument("--head", action="append", default=[], metavar="CHAIN=HASH")
    parser.add_argument(
        "--allow-gaps", action="store_true", help="a filtered export: accept seq gaps"
    )
    parser.add_argument("--anchor", action="append", default=[], metavar="CHAIN=HASH")
    args = parser.parse_args(argv)
    heads = dict(item.split("=", 1) for item in args.head)
    anchors = dict(item.split("=", 1) for item in args.anchor)
    if args.export == "-":
        problems, last = check(sys.stdin, heads, args.allow_gaps, anchors)
    else:
        with open(args.export, "rb") as probe:
            compressed = probe.read(2) == b"\x1f\x8b"
        opener = gzip.open if compressed else open
        with opener(args.export, "rt", encoding="utf-8") as export:
            problems, last = check(export, heads, args.allow_gaps, anchors)
    for problem in problems:
        print(f"FAIL {problem}")
    if problems:
        return 1
    for chain, (seq, head) in sorted(last.items()):
        print(f"{chain}: seq {seq} head {head}")
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())

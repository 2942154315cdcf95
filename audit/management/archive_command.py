"""`hub audit archive list | verify PATH|NAME | import NAME`."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from audit import archives, retention
from audit.models import Archive
from registry.storage import ObjectNotFound, get_storage


def archive_command(command: BaseCommand, options: dict[str, Any]) -> None:
    which = options["archive_command"]
    if which == "list":
        for record in Archive.objects.order_by("chain", "first_seq"):
            command.stdout.write(
                f"{record.name}  {record.chain} seq {record.first_seq}..{record.last_seq} "
                f"{record.count} events {record.oldest:%Y-%m-%d}..{record.newest:%Y-%m-%d}"
            )
    elif which == "verify":
        _verify(command, options["target"])
    else:
        try:
            count = retention.import_archive(name=options["name"])
        except (retention.RetentionError, ObjectNotFound) as exc:
            raise CommandError(str(exc)) from None
        command.stdout.write(f"imported {count} events from {options['name']}")


def _local(path: Path) -> tuple[bytes, Archive | None, dict[str, Any] | None]:
    """A downloaded archive: its record is found by its sha256, or by its name (the chain
    it says plus the file's name) when the file was altered; else the manifest beside it."""
    data = path.read_bytes()
    record = Archive.objects.filter(sha256=hashlib.sha256(data).hexdigest()).first()
    if record is None:
        rows = archives.check(data, {}).rows
        if rows:
            folder = rows[0]["chain"].replace(":", "/", 1)
            record = retention.archive_record(f"{archives.PREFIX}/{folder}/{path.name}")
    sidecar = path.with_name(archives.manifest_name(path.name))
    manifest = json.loads(sidecar.read_text()) if sidecar.is_file() else None
    return data, record, manifest


def _stored(name: str) -> tuple[bytes, Archive | None, dict[str, Any] | None]:
    storage = get_storage()
    try:
        data = storage.object_get(name)
    except ObjectNotFound:
        raise CommandError(f"no file and no archive in the store named {name}") from None
    try:
        manifest = json.loads(storage.object_get(archives.manifest_name(name)))
    except ObjectNotFound:
        manifest = None
    return data, retention.archive_record(name), manifest


def _verify(command: BaseCommand, target: str) -> None:
    path = Path(target)
    data, record, manifest = _local(path) if path.is_file() else _stored(target)
    # The database's record is what the purge relied on; the manifest travels with the file.
    if record is not None:
        expected, against = retention.expected_of(record), "its database record"
    elif manifest is not None:
        expected, against = manifest, "its manifest (no database record found)"
    else:
        expected, against = {}, "itself only (no record or manifest found)"
    check = archives.check(data, expected)
    if not check.ok:
        for problem in check.problems[:20]:
            command.stderr.write(f"FAIL {problem}")
        raise CommandError(f"audit archive does not verify: {check.problems[0]}", returncode=1)
    first, last = check.rows[0], check.rows[-1]
    command.stdout.write(
        f"ok: {first['chain']} seq {first['seq']}..{last['seq']}, {len(check.rows)} events, "
        f"anchor {first['prev_hash']}, head {last['hash']}; checked against {against}"
    )

"""Retention: expired events are archived to the blob store, checked, and only then removed;
the chains still verify from the recorded anchor, and archives verify and read back."""

from __future__ import annotations

import gzip
import hashlib
import json
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

import audit
from audit import archives
from audit.canonical import GENESIS
from audit.exporting import sealed_rows
from audit.models import Archive, Event, ImportedEvent, Seal
from audit.recording import build
from audit.retention import import_archive, run_retention
from audit.sealing import seal_pending
from audit.verify import verify
from registry.storage import StorageError, get_storage
from teams.actions import organisation_retention_set
from tests.people import People

pytestmark = pytest.mark.django_db

VERIFY_EXPORT = Path(__file__).resolve().parent.parent / "audit" / "verify_export.py"
NOW = timezone.now()
OLD = NOW - timedelta(days=40)


def _event(organisation: str | None, when: datetime, n: int = 0) -> Event:
    event = build(action="org.update", organisation=organisation, details={"n": n})
    event.occurred_at = when
    event.save()
    return event


def _old_and_young(org: str = "acme", old: int = 4, young: int = 2) -> list[Event]:
    """`old` events 40 days old then `young` ones of now, sealed in that order."""
    made = [_event(org, OLD, i) for i in range(old)]
    made += [_event(org, NOW, old + i) for i in range(young)]
    seal_pending()
    return made


def _chain_rows(chain: str) -> list[dict[str, Any]]:
    return list(sealed_rows(Event.objects.filter(chain=chain)))


def test_it_archives_expired_events_then_removes_them(
    storage_backend: str, people: People, settings: Any
) -> None:
    settings.HUB_AUDIT_RETENTION_DAYS = 30
    events = _old_and_young("ghost")  # a chain of its own: org:ghost
    before = _chain_rows("org:ghost")
    result = run_retention()
    assert [a.chain for a in result.archived] == ["org:ghost"] and result.failed == []
    archived = result.archived[0]
    assert (archived.first_seq, archived.last_seq, archived.count) == (1, 4, 4)
    assert (archived.anchor, archived.head) == (GENESIS, before[3]["hash"])
    assert [row["id"] for row in _chain_rows("org:ghost")] == [e.pk for e in events[4:]]
    data = get_storage().object_get(archived.name)
    lines = [json.loads(line) for line in gzip.decompress(data).decode().splitlines()]
    assert lines == before[:4]
    manifest = json.loads(get_storage().object_get(archives.manifest_name(archived.name)))
    assert manifest["sha256"] == archived.sha256 == hashlib.sha256(data).hexdigest()
    assert (manifest["anchor"], manifest["head"], manifest["count"]) == (
        GENESIS,
        lines[-1]["hash"],
        4,
    )
    assert verify().ok, verify().problems
    assert run_retention().archived == []  # what is left is young


def test_it_archives_only_the_start_of_a_chain(people: People, settings: Any) -> None:
    settings.HUB_AUDIT_RETENTION_DAYS = 30
    _old_and_young("acme")  # after the people fixture's events, which are young
    before = _chain_rows("org:acme")
    assert run_retention().archived == []
    assert _chain_rows("org:acme") == before


def test_it_removes_nothing_when_the_store_fails(
    people: People, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.HUB_AUDIT_RETENTION_DAYS = 1
    seal_pending()
    before = Event.objects.count()
    storage = get_storage()
    for method, failing in (
        ("object_put", _raise),
        ("object_get", _raise),
        ("object_get", lambda *a, **k: b"not the archive"),
    ):
        with monkeypatch.context() as patch:
            patch.setattr(storage, method, failing)
            result = run_retention(now=NOW + timedelta(days=2))
        assert result.failed and not result.archived, method
        assert Event.objects.count() == before and not Archive.objects.exists(), method
        assert verify().ok
    assert run_retention(now=NOW + timedelta(days=2)).archived  # and then it works


def _raise(*args: object, **kwargs: object) -> None:
    raise StorageError("the store is down")


def _purge(settings: Any, days_ahead: int = 2) -> list[Archive]:
    settings.HUB_AUDIT_RETENTION_DAYS = 1
    seal_pending()
    result = run_retention(now=NOW + timedelta(days=days_ahead))
    assert result.failed == []
    return result.archived


def test_it_verifies_the_chains_after_a_purge_from_the_anchor(
    people: People, settings: Any, capsys: Any
) -> None:
    seal_pending()
    heads = verify().heads
    archived = _purge(settings)
    assert "org:acme" in {a.chain for a in archived}
    assert not Event.objects.filter(chain="org:acme").exists()
    report = verify()
    assert report.ok, report.problems
    assert report.heads["org:acme"] == heads["org:acme"]  # archived whole: ends at its head
    call_command("audit", "verify")
    assert "org:acme: archived through seq" in capsys.readouterr().out
    # The chain goes on from the archive's head.
    event = audit.record(action="org.update", organisation="acme")
    seal_pending()
    seal = Seal.objects.get(event_id=event.pk)
    acme = next(a for a in archived if a.chain == "org:acme")
    assert (seal.seq, seal.prev_hash) == (acme.last_seq + 1, acme.head)
    assert verify().ok
    call_command("audit", "verify", "--chain", "org:acme")
    assert f"seq {acme.last_seq + 1}..{acme.last_seq + 1} ok" in capsys.readouterr().out


def test_it_finds_a_seal_put_back_into_an_archived_range(people: People, settings: Any) -> None:
    from tests.audit_support import raw

    seal_pending()
    archived = next(a for a in _purge(settings) if a.chain == "org:acme")
    forged = audit.record(action="org.update", organisation="acme")
    raw(
        "INSERT INTO audit_seal (event_id, chain, seq, prev_hash, hash, sealed_at) "
        "VALUES (%s, 'org:acme', 1, %s, %s, %s)",
        [forged.pk, archived.anchor, "0" * 64, timezone.now()],
    )
    problem = verify("org:acme").first()
    assert problem is not None and problem.kind == "inserted" and problem.seq == 1


def test_it_verifies_an_archive_by_name_and_as_a_file(
    storage_backend: str, people: People, settings: Any, tmp_path: Path, capsys: Any
) -> None:
    archived = next(a for a in _purge(settings) if a.chain == "org:acme")
    call_command("audit", "archive", "verify", archived.name)
    assert f"{archived.count} events" in capsys.readouterr().out
    path = tmp_path / Path(archived.name).name
    path.write_bytes(get_storage().object_get(archived.name))
    call_command("audit", "archive", "verify", str(path))
    assert "checked against its database record" in capsys.readouterr().out
    # Offline, with the standard library only: the anchor is in the manifest.
    plain = tmp_path / "archive.jsonl"
    plain.write_bytes(gzip.decompress(path.read_bytes()))
    for target in (path, plain):
        checked = subprocess.run(
            [sys.executable, "-I", str(VERIFY_EXPORT), str(target)]
            + ["--anchor", f"org:acme={archived.anchor}", "--head", f"org:acme={archived.head}"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ("alter a line", "altered"),
        ("drop a line", "removed"),
        ("truncate", "gzip"),
    ],
)
def test_it_finds_an_altered_archive(
    people: People, settings: Any, tmp_path: Path, capsys: Any, change: str, expected: str
) -> None:
    archived = next(a for a in _purge(settings) if a.chain == "org:acme")
    data = get_storage().object_get(archived.name)
    lines = gzip.decompress(data).decode().splitlines()
    if change == "alter a line":
        row = json.loads(lines[1])
        row["actor_name"] = "mallory"
        lines[1] = json.dumps(row)
        data = gzip.compress(("\n".join(lines) + "\n").encode())
    elif change == "drop a line":
        data = gzip.compress(("\n".join(lines[:1] + lines[2:]) + "\n").encode())
    else:
        data = data[: len(data) // 2]
    path = tmp_path / Path(archived.name).name
    path.write_bytes(data)
    with pytest.raises(CommandError):
        call_command("audit", "archive", "verify", str(path))
    assert expected in capsys.readouterr().err
    get_storage().object_put(archived.name, data)
    with pytest.raises(CommandError, match="sha256"):
        call_command("audit", "archive", "verify", archived.name)
    assert expected in capsys.readouterr().err


def test_it_reimports_an_archive_as_it_was(
    storage_backend: str, people: People, settings: Any, capsys: Any
) -> None:
    seal_pending()
    before = _chain_rows("org:acme")
    archived = next(a for a in _purge(settings) if a.chain == "org:acme")
    call_command("audit", "archive", "import", archived.name)
    assert f"imported {archived.count} events" in capsys.readouterr().out
    imported = ImportedEvent.objects.filter(archive=archived).order_by("seq")
    assert [
        {**i.content, "seq": i.seq, "prev_hash": i.prev_hash, "hash": i.hash} for i in imported
    ] == before
    with pytest.raises(CommandError, match="imported already"):
        call_command("audit", "archive", "import", archived.name)
    assert verify().ok  # the chains in the table are untouched by an import


def test_it_refuses_to_import_an_altered_archive(people: People, settings: Any) -> None:
    archived = next(a for a in _purge(settings) if a.chain == "org:acme")
    get_storage().object_put(archived.name, gzip.compress(b"{}\n"))
    with pytest.raises(Exception, match="does not verify"):
        import_archive(name=archived.name)
    assert not ImportedEvent.objects.exists()


@pytest.mark.parametrize(
    ("site_days", "acme_days", "acme_archived", "site_archived"),
    [
        (0, None, False, False),  # keep forever, the default
        (1, None, True, True),  # the site default
        (1, 0, False, True),  # acme keeps its events forever
        (0, 1, True, False),  # acme has a retention, the site none
        (1, 10, False, True),  # acme keeps longer than the site
    ],
)
def test_it_follows_the_organisations_own_retention(
    people: People,
    settings: Any,
    site_days: int,
    acme_days: int | None,
    acme_archived: bool,
    site_archived: bool,
) -> None:
    settings.HUB_AUDIT_RETENTION_DAYS = site_days
    organisation_retention_set(organisation=people.acme, days=acme_days)
    audit.record(action="auth.login")  # an event of the site chain
    seal_pending()
    chains = {a.chain for a in run_retention(now=NOW + timedelta(days=2)).archived}
    assert ("org:acme" in chains) == acme_archived
    assert ("site" in chains) == site_archived
    assert verify().ok


def test_it_removes_nothing_on_a_dry_run(people: People, settings: Any, capsys: Any) -> None:
    settings.HUB_AUDIT_RETENTION_DAYS = 30
    _old_and_young("ghost")
    before = Event.objects.count()
    call_command("audit", "retention", "--dry-run")
    assert "would archive org:ghost: seq 1..4 (4 events)" in capsys.readouterr().out
    assert Event.objects.count() == before and not Archive.objects.exists()
    assert get_storage().object_list(archives.PREFIX) == []
    call_command("audit", "retention")
    assert "archived org:ghost: seq 1..4 (4 events)" in capsys.readouterr().out
    assert Event.objects.count() == before - 4
    assert len(get_storage().object_list(archives.PREFIX)) == 2  # the archive, its manifest


@pytest.mark.postgres_only
def test_it_has_postgresql_refuse_deletes_outside_the_retention_job(
    people: People, settings: Any
) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("the append-only trigger is PostgreSQL's")
    archived = next(a for a in _purge(settings) if a.chain == "org:acme")
    event = audit.record(action="auth.login")
    seal_pending()

    def run(sql: str, params: list[Any], *, retention: bool) -> None:
        with transaction.atomic(), connection.cursor() as cursor:
            if retention:
                cursor.execute("SET LOCAL hub.audit_retention = 'on'")
            cursor.execute(sql, params)

    refused = [
        ("DELETE FROM audit_event WHERE id = %s", [event.pk], False),
        ("DELETE FROM audit_seal WHERE event_id = %s", [event.pk], False),
        ("UPDATE audit_event SET actor_name = 'x' WHERE id = %s", [event.pk], True),
        ("UPDATE audit_seal SET hash = 'x' WHERE event_id = %s", [event.pk], True),
        ("UPDATE audit_archive SET head = 'x' WHERE id = %s", [archived.pk], True),
        ("DELETE FROM audit_archive WHERE id = %s", [archived.pk], True),
    ]
    for sql, params, retention in refused:
        with pytest.raises(DatabaseError, match="append-only"):
            run(sql, params, retention=retention)
    assert verify().ok
    # The retention job's own transaction may delete (here, then rolled back).
    with pytest.raises(RuntimeError), transaction.atomic():
        run("DELETE FROM audit_seal WHERE event_id = %s", [event.pk], retention=True)
        assert not Seal.objects.filter(event_id=event.pk).exists()
        raise RuntimeError("roll back")
    assert Seal.objects.filter(event_id=event.pk).exists()

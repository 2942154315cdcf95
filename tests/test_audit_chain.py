"""Sealing and verification: the chains hold, and altering, removing or inserting shows."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction
from django.test import Client

import audit
from audit.canonical import GENESIS, chain_hash
from audit.models import AppendOnly, Event, Seal
from audit.sealing import seal_pending
from audit.verify import verify
from tests.audit_support import raw, run_beside_sealers
from tests.conftest import basic_auth
from tests.helpers import push_image
from tests.people import PASSWORD, People

VERIFY_EXPORT = Path(__file__).resolve().parent.parent / "audit" / "verify_export.py"
NO_GRACE = timedelta(0)


def _some_events(n: int = 5, chain_org: str = "acme") -> list[Event]:
    return [
        audit.record(action="org.update", organisation=chain_org, details={"n": i})
        for i in range(n)
    ]


@pytest.mark.django_db
def test_it_seals_each_chain_contiguously_from_genesis(people: People) -> None:
    _some_events(3)
    audit.record(action="auth.login")
    assert Event.objects.filter(seal__isnull=True).exists()
    assert seal_pending() == Event.objects.count()
    assert seal_pending() == 0
    for chain in set(Seal.objects.values_list("chain", flat=True)):
        seals = list(Seal.objects.filter(chain=chain).order_by("seq").select_related("event"))
        assert [s.seq for s in seals] == list(range(1, len(seals) + 1))
        prev = GENESIS
        for seal in seals:
            assert seal.prev_hash == prev and seal.hash == chain_hash(prev, seal.event)
            prev = seal.hash
    assert {"org:acme", "site"} <= set(Seal.objects.values_list("chain", flat=True))
    assert verify().ok


@pytest.mark.django_db
def test_it_refuses_updates_and_deletes_through_the_orm(people: People) -> None:
    event = audit.record(action="auth.login")
    seal_pending()
    event.action = "auth.logout"
    with pytest.raises(AppendOnly):
        event.save()
    with pytest.raises(AppendOnly):
        Event.objects.filter(pk=event.pk).update(action="x")
    with pytest.raises(AppendOnly):
        Seal.objects.all().delete()


@pytest.mark.django_db
def test_it_finds_an_altered_event(people: People) -> None:
    events = _some_events()
    seal_pending()
    victim = events[2]
    raw("UPDATE audit_event SET actor_name = %s WHERE id = %s", ["mallory", victim.pk])
    report = verify()
    first = report.first("org:acme")
    assert first is not None and (first.kind, first.event_id) == ("altered", victim.pk)
    assert len(report.problems) == 1


@pytest.mark.django_db
def test_it_finds_a_removed_event(people: People) -> None:
    events = _some_events()
    seal_pending()
    raw("DELETE FROM audit_event WHERE id = %s", [events[1].pk])
    problem = verify("org:acme").first()
    assert problem is not None and (problem.kind, problem.event_id) == ("removed", events[1].pk)


@pytest.mark.django_db
def test_it_finds_an_event_removed_with_its_seal(people: People) -> None:
    events = _some_events()
    seal_pending()
    seq = Seal.objects.get(event_id=events[3].pk).seq
    raw("DELETE FROM audit_seal WHERE event_id = %s", [events[3].pk])
    raw("DELETE FROM audit_event WHERE id = %s", [events[3].pk])
    problem = verify("org:acme").first()
    assert problem is not None and (problem.kind, problem.seq) == ("removed", seq)
    assert f"seals {seq} are missing" in problem.message


@pytest.mark.django_db
def test_it_finds_an_inserted_event(people: People) -> None:
    _some_events()
    seal_pending()
    forged_id = (Event.objects.order_by("id").values_list("id", flat=True).first() or 1) - 1
    raw(
        "INSERT INTO audit_event (id, occurred_at, chain, actor_kind, actor_id, actor_name, "
        "auth_method, client_address, user_agent, request_id, action, outcome, organisation, "
        "repository, tag, digest, details) VALUES (%s, %s, 'org:acme', 'user', '1', 'alice', "
        "'password', '', '', '', 'grant.set', 'success', 'acme', '', '', '', '{}')",
        [
            forged_id,
            "2026-01-01 00:00:00+00:00"
            if connection.vendor == "postgresql"
            else "2026-01-01 00:00:00",
        ],
    )
    problem = verify("org:acme", grace=NO_GRACE).first()
    assert problem is not None and (problem.kind, problem.event_id) == ("inserted", forged_id)
    # An event waiting for the sealer (newer than every seal) is no problem.
    audit.record(action="org.update", organisation="acme")
    assert verify("site", grace=NO_GRACE).ok


@pytest.mark.django_db
def test_it_finds_a_reused_sequence_number(people: People) -> None:
    events = _some_events(2)
    seal_pending()
    # Without the unique constraint (dropped by someone who could write raw SQL)...
    duplicate = Seal.objects.get(event_id=events[1].pk)
    raw("DELETE FROM audit_seal WHERE event_id = %s", [events[1].pk])
    forged = audit.record(action="org.update", organisation="acme", details={"forged": True})
    raw(
        "INSERT INTO audit_seal (event_id, chain, seq, prev_hash, hash, sealed_at) "
        "VALUES (%s, 'org:acme', %s, %s, %s, %s)",
        [
            forged.pk,
            duplicate.seq,
            duplicate.prev_hash,
            chain_hash(duplicate.prev_hash, forged),
            duplicate.sealed_at,
        ],
    )
    problem = verify("org:acme", grace=NO_GRACE).first()
    assert problem is not None and problem.kind == "inserted"
    assert problem.event_id == events[1].pk  # its seal is gone: it now stands unsealed


@pytest.mark.django_db
def test_it_checks_a_range_of_one_chain(people: People) -> None:
    events = _some_events(6)
    seal_pending()
    raw("UPDATE audit_event SET details = %s WHERE id = %s", ['{"n": 99}', events[5].pk])
    seq = Seal.objects.get(event_id=events[5].pk).seq
    assert verify("org:acme", 1, seq - 1).ok
    problem = verify("org:acme", seq - 1, seq).first()
    assert problem is not None and problem.event_id == events[5].pk


@pytest.mark.django_db
def test_it_fails_the_verify_command_naming_the_event(people: People, capsys) -> None:
    events = _some_events(3)
    call_command("audit", "seal")
    call_command("audit", "verify")
    assert "ok:" in capsys.readouterr().out
    raw("UPDATE audit_event SET outcome = 'failure' WHERE id = %s", [events[0].pk])
    with pytest.raises(CommandError) as failed:
        call_command("audit", "verify", "--chain", "org:acme")
    assert failed.value.returncode == 1
    assert f"event {events[0].pk}" in str(failed.value) and "altered" in str(failed.value)


@pytest.mark.postgres_only
@pytest.mark.django_db
def test_it_has_postgresql_refuse_raw_updates_and_deletes(people: People) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("the append-only trigger is PostgreSQL's")
    event = audit.record(action="auth.login")
    seal_pending()
    for sql in (
        "UPDATE audit_event SET actor_name = 'x' WHERE id = %s",
        "DELETE FROM audit_event WHERE id = %s",
        "UPDATE audit_seal SET hash = 'x' WHERE event_id = %s",
        "DELETE FROM audit_seal WHERE event_id = %s",
    ):
        with pytest.raises(DatabaseError, match="append-only"):
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(sql, [event.pk])
    assert verify().ok


def _export(tmp_path: Path, fmt: str = "jsonl", *args: str) -> Path:
    out = tmp_path / f"audit.{fmt}"
    call_command("audit", "export", "--format", fmt, "-o", str(out), *args)
    return out


def _verify_export(path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-I", str(VERIFY_EXPORT), str(path), *args],
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.django_db
def test_it_exports_what_verifies_offline(people: People, tmp_path: Path) -> None:
    alice = Client(HTTP_AUTHORIZATION=basic_auth("alice", PASSWORD))
    push_image(alice, "acme/private", "v1", layers=(b"e1",))
    audit.record(action="auth.login", details={"ünïcode": "✓", "n": 1.5})
    seal_pending()
    report = verify()
    path = _export(tmp_path)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(rows) == Event.objects.count()
    assert {"seq", "prev_hash", "hash", "id", "occurred_at", "details"} <= set(rows[0])
    checked = _verify_export(path, "--head", f"org:acme={report.heads['org:acme']}")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # Tamper with one line of the file: the offline check names that event.
    lines = path.read_text().splitlines()
    row = json.loads(lines[2])
    row["actor_name"] = "mallory"
    lines[2] = json.dumps(row)
    path.write_text("\n".join(lines) + "\n")
    checked = _verify_export(path)
    assert checked.returncode == 1
    assert f"event {row['id']}" in checked.stdout and "altered" in checked.stdout
    # Drop the newest line of a chain: only the head written down earlier shows it.
    kept = [line for line in lines if json.loads(line)["hash"] != report.heads["org:acme"]]
    path.write_text("\n".join(kept) + "\n")
    checked = _verify_export(path, "--head", f"org:acme={report.heads['org:acme']}")
    assert checked.returncode == 1 and "removed" in checked.stdout


@pytest.mark.django_db
def test_it_exports_a_filtered_chain_csv_and_ocsf(people: People, tmp_path: Path) -> None:
    alice = Client(HTTP_AUTHORIZATION=basic_auth("alice", PASSWORD), REMOTE_ADDR="10.1.2.3")
    push_image(alice, "acme/private", "v1", layers=(b"e2",))
    seal_pending()
    path = _export(tmp_path, "jsonl", "--organisation", "acme")
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert rows and {r["chain"] for r in rows} == {"org:acme"}
    assert _verify_export(path).returncode == 0  # one whole chain: no gaps
    csv_text = _export(tmp_path, "csv", "--action", "manifest.push").read_text()
    header, *lines = csv_text.splitlines()
    assert header.split(",")[-3:] == ["seq", "prev_hash", "hash"] and len(lines) == 1
    ocsf = [json.loads(x) for x in _export(tmp_path, "ocsf").read_text().splitlines()]
    push = next(e for e in ocsf if e["api"]["operation"] == "manifest.push")
    assert push["class_uid"] == 6003 and push["type_uid"] == 600301
    assert push["actor"]["user"]["name"] == "alice"
    assert push["src_endpoint"]["ip"] == "10.1.2.3"
    assert isinstance(push["time"], int) and push["status"] == "Success"
    assert push["metadata"]["uid"] and push["unmapped"]["repository"] == "acme/private"
    assert {"seq", "hash", "prev_hash"} <= set(push["unmapped"])


@pytest.mark.django_db(transaction=True)
def test_it_keeps_every_chain_valid_under_concurrent_pushes_and_sealers(
    people: People,
) -> None:
    if connection.vendor == "sqlite" and connection.is_in_memory_db():
        # The shared-cache in-memory test database answers "table is locked" to a second
        # writer instead of waiting; a file database (and PostgreSQL) queue them.
        pytest.skip("needs a database that queues concurrent writers")

    def pusher(i: int) -> None:
        client = Client(HTTP_AUTHORIZATION=basic_auth("alice", PASSWORD))
        for j in range(3):
            repo = "acme/private" if (i + j) % 2 else "alice/own"
            push_image(client, repo, f"t{j}", layers=(f"{i}-{j}".encode(),))

    run_beside_sealers([lambda i=i: pusher(i) for i in range(4)])
    report = verify(grace=NO_GRACE)
    assert report.ok, report.problems
    assert not Event.objects.filter(seal__isnull=True).exists()
    pushes = Event.objects.filter(action="manifest.push").count()
    assert pushes == 12
    assert {"org:acme", "user:alice"} <= set(report.chains)


def test_it_starts_one_sealing_thread_per_process_when_configured(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from audit import sealing

    rounds: list[float] = []
    monkeypatch.setattr(sealing, "_run", lambda every: rounds.append(every))
    monkeypatch.setattr(sealing, "_started_in", None)
    settings.HUB_AUDIT_SEAL_INTERVAL = -1
    sealing.start_sealer_if_configured()
    assert not sealing.ensure_sealer()  # switched off
    settings.HUB_AUDIT_SEAL_INTERVAL = 0
    sealing.start_sealer_if_configured()  # tests are not gunicorn: nothing starts
    assert sealing._started_in is None
    settings.HUB_AUDIT_SEAL_INTERVAL = 0.5
    sealing.start_sealer_if_configured()
    assert not sealing.ensure_sealer()  # once per process
    settings.HUB_AUDIT_SEAL_INTERVAL = 0
    monkeypatch.setattr(sealing, "_started_in", None)
    assert sealing.ensure_sealer()  # a gunicorn worker's first request: every 2 s
    for thread in threading.enumerate():
        if thread.name == "audit-sealer":
            thread.join(timeout=5)
    assert rounds == [0.5, sealing.DEFAULT_INTERVAL]

"""Exports are byte for byte what the canonical form of each sealed event gives."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from django.db.models import JSONField, Value

from audit import export_sql, exporting, record
from audit.canonical import content
from audit.models import Event
from audit.ocsf import ocsf
from audit.sealing import seal_pending

pytestmark = pytest.mark.django_db


def _expected_rows() -> list[dict[str, Any]]:
    """The slow, obvious way: model instances, chain by chain in seal order."""
    events = (
        Event.objects.filter(seal__isnull=False)
        .select_related("seal")
        .order_by("chain", "seal__seq")
    )
    rows = []
    for event in events:
        row = content(event)
        row.update(seq=event.seal.seq, prev_hash=event.seal.prev_hash, hash=event.seal.hash)
        rows.append(row)
    return rows


def _dumps(data: Any, **kwargs: Any) -> str:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False, **kwargs)


def _expected(fmt: str) -> str:
    rows = _expected_rows()
    if fmt == "jsonl":
        return "".join(_dumps(row, sort_keys=True) + "\n" for row in rows)
    if fmt == "ocsf":
        return "".join(_dumps(ocsf(row)) + "\n" for row in rows)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(exporting.COLUMNS)
    for row in rows:
        values = {**row, "details": _dumps(row["details"], sort_keys=True)}
        writer.writerow(["" if values[c] is None else values[c] for c in exporting.COLUMNS])
    return out.getvalue()


@pytest.mark.parametrize("fmt", exporting.FORMATS)
def test_it_exports_exactly_the_canonical_form_of_each_sealed_event(
    monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    monkeypatch.setattr(exporting, "CHUNK", 3)  # rows and writes cross chunk boundaries
    monkeypatch.setattr(export_sql, "BLOCK", 500)  # and PostgreSQL's COPY blocks
    for i in range(7):
        record(
            action="manifest.push" if i % 2 else "auth.login",
            organisation="acme" if i % 3 else None,
            repository="acme/app" if i % 3 else None,
            tag=f'v{i} "quoted"\\ ✓\n\x01',  # everything a JSON string escapes
            details={"zeta": i, "ünïcode": '✓ "quoted", comma\nnewline', "n": 1.5, "a": None},
        )
    seal_pending()
    record(action="auth.login")  # not sealed yet: not exported
    chunks = list(exporting.render(fmt, Event.objects.all()))
    assert "".join(chunks) == _expected(fmt)
    assert len(chunks) > 1


_TRICKY = 'a "quoted", comma\r\nnewline\ttab \\ back\x01\x02 ✓ \u2028'


def _tricky_event(i: int, **fields: Any) -> Event:
    values: dict[str, Any] = {
        "occurred_at": datetime(2026, 1, 2, 3, 4, 5, 6789 * i, tzinfo=UTC),
        "chain": "org:acme" if i % 2 else "site",
        "actor_kind": "user",
        "actor_id": str(i),
        "actor_name": f"alice{_TRICKY}",
        "auth_method": "token" if i % 3 else "",
        "token_id": i if i % 2 else None,
        "client_address": "2001:db8::1",
        "user_agent": _TRICKY,
        "request_id": f"req-{i}",
        "action": "manifest.push",
        "outcome": "success",
        "organisation": "acme" if i % 2 else "",
        "repository": f"acme/app{i}" if i % 4 else "",
        "tag": _TRICKY,
        "digest": "sha256:" + "ab" * 32,
        "details": {},
    }
    values.update(fields)
    return Event.objects.create(**values)


@pytest.mark.postgres_only
@pytest.mark.parametrize("fmt", exporting.FORMATS)
def test_it_writes_on_postgresql_the_same_bytes_as_in_python(
    monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    monkeypatch.setattr(export_sql, "BLOCK", 700)  # marked rows land in several blocks
    actions = [
        "manifest.push", "manifest.pull", "tag.delete", "tag.move", "member.set",
        "robot.create", "team.remove", "org.enable", "webhook.rotate", "auth.token_issued",
    ]  # fmt: skip
    details: list[Any] = [
        {},
        {"zeta": 1, "a": None, "ünïcode": _TRICKY, "n": 1.5, "t": True, "x": [1, {"b": 2, "a": 1}]},
        {"before": "sha256:" + "cd" * 32, "big": 12345678901234567890, "small": 1e-7},
        {"\x01key": "\x02", "b\\": "\\\\"},
        Value(None, JSONField()),  # JSON null, which exports as {}
    ]
    for i in range(40):
        _tricky_event(
            i,
            action=actions[i % len(actions)],
            outcome=("success", "failure", "denied")[i % 3],
            details=details[i % len(details)],
        )
    seal_pending()
    events = Event.objects.all()
    python = exporting.PythonExport(fmt, events, None)
    copied = exporting.stream(fmt, events)
    assert isinstance(copied, export_sql.CopyExport)
    expected = "".join(python)
    assert "".join(copied) == expected
    assert copied.count == python.count == 40
    assert "ünïcode" in expected and "\\u0001key" in expected  # the tricky details went through


@pytest.mark.postgres_only
def test_it_leaves_the_connection_usable_when_the_reader_goes_away(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(export_sql, "BLOCK", 100)
    for i in range(30):
        _tricky_event(i)
    seal_pending()
    pieces = exporting.render("jsonl", Event.objects.all())
    next(pieces)
    pieces.close()  # the client hung up mid-download
    assert Event.objects.count() == 30

"""Exports are byte for byte what the canonical form of each sealed event gives."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest

from audit import exporting, record
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

"""Helpers for the audit tests: new events since a mark, and tampering behind the ORM's back."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from django.db import connection, transaction
from django.db.models import Max

from audit.models import Event


def mark() -> int:
    return Event.objects.aggregate(m=Max("id"))["m"] or 0


def events_after(since: int, **filters: Any) -> list[Event]:
    return list(Event.objects.filter(id__gt=since, **filters).order_by("id"))


def actions_after(since: int) -> list[str]:
    return [e.action for e in events_after(since)]


def raw(sql: str, params: list[Any] | None = None) -> None:
    """Tamper with the audit tables as someone with the database's superuser could: with
    triggers off for the transaction (PostgreSQL's refuses UPDATE always, and DELETE
    outside the retention job); SQLite has no trigger."""
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL session_replication_role = 'replica'")
        cursor.execute(sql, params or [])


def assert_fields(event: Event, expected: dict[str, Any]) -> None:
    for name, value in expected.items():
        if name == "details":
            for key, inner in value.items():
                assert event.details.get(key) == inner, (event.action, key, event.details)
        else:
            assert getattr(event, name) == value, (event.action, name, getattr(event, name))


def run_beside_sealers(writers: list[Callable[[], None]], sealers: int = 2) -> None:
    """Run the writers in threads while sealer threads seal in a loop, each thread on its
    own connection; then seal what is left. Any thread's exception fails the test."""
    from audit.sealing import seal_pending

    errors: list[BaseException] = []
    stop = threading.Event()

    def guarded(body: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                body()
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)
            finally:
                connection.close()

        return run

    def sealer() -> None:
        while not stop.is_set():
            seal_pending()

    sealing = [threading.Thread(target=guarded(sealer)) for _ in range(sealers)]
    writing = [threading.Thread(target=guarded(writer)) for writer in writers]
    for thread in sealing + writing:
        thread.start()
    for thread in writing:
        thread.join()
    stop.set()
    for thread in sealing:
        thread.join()
    assert not errors, errors
    seal_pending()

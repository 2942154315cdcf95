"""Database locks that keep garbage collection and pushes apart.

- `hold(model, ids)`: within a transaction, the rows (PostgreSQL: FOR KEY SHARE) that a
  push is about to reference; a collection locks what it deletes FOR UPDATE SKIP LOCKED,
  so it skips them, or the push waits and finds them gone.
- `digest_lock`/`digest_locks`: a per-digest lock (PostgreSQL advisory, transaction
  scoped). Finishing an upload holds it shared while it writes the bytes and the row;
  a collection holds it exclusively while it removes the bytes of a digest whose row
  it deleted, after checking no row came back.
- `collection_lock`: one collection at a time, across processes and nodes.

On SQLite every write transaction is exclusive (BEGIN IMMEDIATE), which gives the same
guarantees; the collection lock is then a file lock in the data folder.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
from collections.abc import Iterable, Iterator

from django.conf import settings
from django.db import connection, models

_COLLECTION_KEY = "hub:gc"


def _key(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


def _postgres() -> bool:
    return connection.vendor == "postgresql"


def hold(model: type[models.Model], ids: Iterable[int]) -> set[int]:
    """Lock rows against deletion until the transaction ends; returns the ids still there."""
    wanted = sorted(set(ids))
    if not wanted:
        return set()
    table = model._meta.db_table
    if not _postgres():
        return set(model._default_manager.filter(pk__in=wanted).values_list("pk", flat=True))
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id FROM {table} WHERE id = ANY(%s) ORDER BY id FOR KEY SHARE",  # noqa: S608
            [wanted],
        )
        return {row[0] for row in cursor.fetchall()}


def digest_lock(digest: str, *, shared: bool) -> None:
    """Within a transaction: the digest's lock, until the transaction ends."""
    if _postgres():
        function = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {function}(%s)", [_key(f"blob:{digest}")])


def digest_locks(digests: Iterable[str]) -> None:
    """Within a transaction: the exclusive locks of many digests, in a fixed order."""
    if _postgres():
        keys = sorted({_key(f"blob:{digest}") for digest in digests})
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(pg_advisory_xact_lock(k))"
                " FROM (SELECT unnest(%s::bigint[]) AS k ORDER BY 1) AS keys",
                [keys],
            )


@contextlib.contextmanager
def collection_lock() -> Iterator[bool]:
    """Yields whether this caller may collect now (False: another collection is running)."""
    if _postgres():
        key = _key(_COLLECTION_KEY)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
            got = bool(cursor.fetchone()[0])
        try:
            yield got
        finally:
            if got:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_unlock(%s)", [key])
        return
    settings.DATA_DIR.mkdir(parents=True, exist_ok=True)
    with open(settings.DATA_DIR / "gc.lock", "a+b") as lock_file:
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)

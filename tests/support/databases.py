"""Fresh databases for the servers tests start (pytest-django's is for in-process tests)."""

from __future__ import annotations

import atexit
import os
import shutil
import sqlite3
import tempfile
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

# Databases that are migrated and have the administrator already (copies of a template):
# start_hub need not migrate them and make the administrator again (seconds each time).
PREPARED: set[str] = set()
_templates: dict[str, str] = {}


def _template(base: str) -> str:
    """A database migrated once, with the administrator, that fresh ones are copied from
    (PostgreSQL's CREATE DATABASE ... TEMPLATE); dropped when the test process ends."""
    if base in _templates:
        return _templates[base]
    import psycopg

    from tests.support.servers import migrate_and_make_admin

    parts = urlsplit(base)
    name = f"hub_e2e_template_{uuid.uuid4().hex[:10]}"
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    atexit.register(drop)
    data_dir = tempfile.mkdtemp(prefix="hub-template-")
    try:
        migrate_and_make_admin(
            data_dir, {"DATABASE_URL": urlunsplit(parts._replace(path=f"/{name}"))}
        )
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    _templates[base] = name
    return name


_sqlite_template: list[Path] = []
_sqlite_template_lock = threading.Lock()


def sqlite_template() -> Path:
    """A migrated SQLite database with the administrator, made once (thread-safe: the e2e
    session starts making it in the background)."""
    with _sqlite_template_lock:
        if not _sqlite_template:
            from tests.support.servers import migrate_and_make_admin

            data_dir = Path(tempfile.mkdtemp(prefix="hub-template-"))
            atexit.register(shutil.rmtree, data_dir, True)
            migrate_and_make_admin(str(data_dir), {"DATABASE_URL": ""})
            db = data_dir / "hub.sqlite3"
            conn = sqlite3.connect(db)
            try:  # everything into the main file, which is all that is copied
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                conn.close()
            _sqlite_template.append(db)
        return _sqlite_template[0]


def copy_sqlite_template(target: Path) -> None:
    """Put a migrated SQLite database with the administrator at `target`."""
    shutil.copyfile(sqlite_template(), target)


def postgres_base_url() -> str | None:
    """The PostgreSQL server the suite runs against, if any (from DATABASE_URL)."""
    url = os.environ.get("DATABASE_URL", "")
    return url if url.startswith(("postgres://", "postgresql://")) else None


@contextmanager
def fresh_database(data_dir: Path) -> Iterator[dict[str, str]]:
    """Environment for `hub serve`: a new PostgreSQL database when the suite runs on
    PostgreSQL (dropped afterwards), else the embedded SQLite in `data_dir`."""
    base = postgres_base_url()
    if base is None:
        yield {}
        return
    import psycopg

    parts = urlsplit(base)
    name = f"hub_e2e_{uuid.uuid4().hex[:10]}"
    admin = urlunsplit(parts._replace(path="/postgres"))
    template = _template(base)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    url = urlunsplit(parts._replace(path=f"/{name}"))
    PREPARED.add(url)
    try:
        yield {"DATABASE_URL": url}
    finally:
        PREPARED.discard(url)
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

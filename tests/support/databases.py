"""Fresh databases for the servers tests start (pytest-django's is for in-process tests)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit


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
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield {"DATABASE_URL": urlunsplit(parts._replace(path=f"/{name}"))}
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

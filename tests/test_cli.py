"""The `hub` command as a user runs it (a real process, its own data folder)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

HUB = str(Path(sys.executable).parent / "hub")


def _run(args: list[str], data_dir: Path, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    full_env.update(HUB_DATA_DIR=str(data_dir), **env)
    return subprocess.run(
        [HUB, *args], env=full_env, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.mark.slow
def test_it_creates_a_superuser_from_the_environment(tmp_path: Path) -> None:
    assert _run(["migrate", "--noinput"], tmp_path).returncode == 0
    result = _run(
        ["createsuperuser", "--noinput"],
        tmp_path,
        DJANGO_SUPERUSER_USERNAME="root",
        DJANGO_SUPERUSER_PASSWORD="s3cret-passw0rd",
        DJANGO_SUPERUSER_EMAIL="root@example.com",
    )
    assert result.returncode == 0, result.stderr
    with sqlite3.connect(tmp_path / "hub.sqlite3") as db:
        rows = db.execute("select username, email, is_superuser from auth_user").fetchall()
    assert rows == [("root", "root@example.com", 1)]


@pytest.mark.slow
def test_it_runs_django_commands_under_its_own_name(tmp_path: Path) -> None:
    result = _run(["check"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout

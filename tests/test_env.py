"""hub.env: settings from the environment, and secrets kept in the data folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.env import shared_secret


def test_it_makes_the_secret_once_and_keeps_it(tmp_path: Path) -> None:
    path = tmp_path / "secret_key"
    first = shared_secret(path, lambda: "one")
    assert first == "one"
    assert shared_secret(path, lambda: "two") == "one"
    assert path.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["secret_key"]  # no temporary left


def test_it_takes_the_secret_another_process_made_meanwhile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two nodes starting at once on a fresh data folder once each kept a key of their own
    (the second replaced the file after the first had read it)."""
    path = tmp_path / "secret_key"
    path.write_text("theirs")
    # As if it appeared just after every look: made after ours was checked for.
    monkeypatch.setattr(Path, "exists", lambda self: False)
    assert shared_secret(path, lambda: "ours") == "theirs"
    assert path.read_text() == "theirs"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["secret_key"]

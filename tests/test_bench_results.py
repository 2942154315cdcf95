"""bench/run rewrites only its own part of bench/RESULTS.md (it once dropped every other
bench's recorded sections)."""

from __future__ import annotations

import importlib.util
from importlib.machinery import SourceFileLoader
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]


def _bench_run() -> ModuleType:
    # bench/run has no .py suffix: load it as a module by hand.
    loader = SourceFileLoader("bench_run", str(ROOT / "bench" / "run"))
    spec = importlib.util.spec_from_loader("bench_run", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def test_it_keeps_the_other_benches_sections(tmp_path: Path) -> None:
    results = tmp_path / "RESULTS.md"
    results.write_text("# Old table\nold\n\n## GC\nkept\n\n## Audit\nkept too\n")
    out = _bench_run().replace_own_section(results, "# New table\nnew\n")
    assert out == "# New table\nnew\n\n## GC\nkept\n\n## Audit\nkept too\n"


def test_it_writes_the_whole_file_when_there_is_none(tmp_path: Path) -> None:
    out = _bench_run().replace_own_section(tmp_path / "missing.md", "# Table\n")
    assert out == "# Table\n"

"""The multiprocess metrics directory `hub serve`, `hub worker` and `hub beat` count into.

A module without prometheus_client or gunicorn imports: it runs before either may be.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def metrics_directory() -> tuple[Path, bool]:
    """The multiprocess metrics directory for this run, emptied; and whether we made it.

    Files left by an earlier run would be added to this run's counts (and a new worker
    may get an old pid), so an operator's PROMETHEUS_MULTIPROC_DIR is emptied first.
    """
    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if given:
        path = Path(given)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink()
        return path, False
    return Path(tempfile.mkdtemp(prefix="hub-metrics-")), True

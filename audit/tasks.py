"""The audit trail's background task (hub.celery): retention, archive first."""

from __future__ import annotations

from hub.celery import app


@app.task(name="audit.apply_retention")
def apply_retention() -> int:
    """Archive and remove the events older than their retention; returns how many archives."""
    from audit.retention import run_retention

    result = run_retention()
    return len(result.archived)

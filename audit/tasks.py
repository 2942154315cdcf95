"""The audit trail's background tasks (hub.celery): retention, export jobs."""

from __future__ import annotations

from hub.celery import app


@app.task(name="audit.apply_retention")
def apply_retention() -> int:
    """Archive and remove the events older than their retention; returns how many archives."""
    from audit.retention import run_retention

    result = run_retention()
    return len(result.archived)


@app.task(name="audit.run_export")
def run_export(job_id: int) -> int | None:
    """Claim a queued export job and write its file to the blob store; returns its row
    count (None when another runner has it, or had it)."""
    from audit.export_runner import run_job

    job = run_job(job_id)
    return job.row_count if job is not None else None


@app.task(name="audit.run_exports")
def run_exports() -> int | None:
    """Claim the oldest ready export job (queued, or left by a runner that died) and run
    it; returns its id. Periodic: how jobs run without a broker, and a safety net with one."""
    from audit.export_runner import run_ready

    job = run_ready()
    return job.id if job is not None else None


@app.task(name="audit.expire_exports")
def expire_exports() -> int:
    """Remove the files of export jobs past their expiry; returns how many."""
    from audit.export_runner import expire_jobs

    return expire_jobs()

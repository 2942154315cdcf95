"""Prometheus metrics: what each process counts. Exposed at /metrics (hub.metrics_view).

Under `hub serve` the server sets PROMETHEUS_MULTIPROC_DIR before the workers start, so
every worker counts into its own memory-mapped file and a scrape on any worker adds
them all up. Labels never hold anything a client chooses (paths, names, digests): a
route label is the URL pattern's name.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

# Seconds: registry reads take about a millisecond, a layer push can take minutes.
_REQUEST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_UPLOAD_BUCKETS = (0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, 4 * 3600)

REQUESTS = Counter(
    "hub_http_requests",
    "HTTP requests answered, by method, route (URL pattern name) and status.",
    ["method", "route", "status"],
)
REQUEST_DURATION = Histogram(
    "hub_http_request_duration_seconds",
    "Time to produce a response (a streamed body's transfer is not included), by route.",
    ["route"],
    buckets=_REQUEST_BUCKETS,
)
BYTES_PUSHED = Counter("hub_registry_pushed_bytes", "Blob bytes received and written to the store.")
BYTES_PULLED = Counter(
    "hub_registry_pulled_bytes",
    "Blob bytes served by Hub itself (redirects to the store are not counted).",
)
UPLOAD_DURATION = Histogram(
    "hub_registry_upload_duration_seconds",
    "From opening an upload session to the verified blob.",
    buckets=_UPLOAD_BUCKETS,
)

# Counted by the garbage collector and the webhook sender (Celery tasks).
GC_RUNS = Counter(
    "hub_gc_runs", "Garbage collection runs, by outcome (success, failure).", ["outcome"]
)
GC_BYTES_FREED = Counter("hub_gc_freed_bytes", "Bytes of blobs the garbage collector deleted.")
GC_BLOBS_DELETED = Counter("hub_gc_deleted_blobs", "Blobs the garbage collector deleted.")
WEBHOOK_DELIVERIES = Counter(
    "hub_webhook_deliveries",
    "Webhook delivery attempts, by outcome (success, failure, gave_up).",
    ["outcome"],
)
WEBHOOK_DURATION = Histogram(
    "hub_webhook_delivery_duration_seconds",
    "Time for one webhook delivery attempt.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)

# Counted by `hub worker` (hub.worker_metrics), for every task it runs or sends.
TASKS = Counter(
    "hub_celery_tasks",
    "Tasks a worker finished, by task name and final state (SUCCESS, FAILURE, RETRY, ...).",
    ["task", "state"],
)
TASK_DURATION = Histogram(
    "hub_celery_task_duration_seconds",
    "Time a worker spent running a task, by task name.",
    ["task"],
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600),
)
TASKS_SENT = Counter(
    "hub_celery_tasks_sent",
    "Tasks sent to the broker by this process (`hub beat`'s schedule, a worker's retries).",
    ["task"],
)

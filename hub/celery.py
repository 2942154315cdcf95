"""The Celery app: Hub's background jobs (garbage collection, upload cleanup).

With HUB_REDIS_URL set, tasks go to Redis and run in `hub worker`, and `hub beat` sends
the periodic ones (settings.CELERY_BEAT_SCHEDULE). Without it (the embedded default),
tasks run at once in the process that sends them (task_always_eager) and the periodic
jobs run from a thread in each `hub serve` worker (hub.scheduler).

Every task is idempotent and safe to run twice; a task that depends on a database
change is sent only once that change is committed (hub.tasks.send_on_commit).
"""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hub.settings")

# Where Hub's tasks live: the worker and the embedded scheduler load these, and nothing
# else (celery's autodiscovery would import every installed app's modules, about 28 MB
# more per web worker).
TASK_MODULES = ("registry.tasks", "audit.tasks")

app = Celery("hub", include=TASK_MODULES)
app.config_from_object("django.conf:settings", namespace="CELERY")

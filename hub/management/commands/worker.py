"""`hub worker`: a Celery worker for Hub's tasks (needs HUB_REDIS_URL)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Run a Celery worker for Hub's background tasks (any further arguments go to celery)."

    # Every argument after the command name goes to celery as it is (`--help` too).
    celery_args: list[str] = []

    def run_from_argv(self, argv: list[str]) -> None:
        self.celery_args = argv[2:]
        from hub import worker_metrics

        worker_metrics.prepare()
        super().run_from_argv(argv[:2])

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.HUB_REDIS_URL:
            raise CommandError(
                "HUB_REDIS_URL is not set: without a broker, tasks run inside `hub serve`"
            )
        from hub import worker_metrics

        worker_metrics.start()
        from hub.celery import app

        app.worker_main(["worker", "--loglevel", "INFO", *self.celery_args])

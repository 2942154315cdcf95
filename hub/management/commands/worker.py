"""`hub worker`: a Celery worker for Hub's tasks (needs HUB_REDIS_URL)."""

from __future__ import annotations

import argparse
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser


class Command(BaseCommand):
    help = "Run a Celery worker for Hub's background tasks (any further arguments go to celery)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("celery_args", nargs=argparse.REMAINDER, help="e.g. --concurrency 2")

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.HUB_REDIS_URL:
            raise CommandError(
                "HUB_REDIS_URL is not set: without a broker, tasks run inside `hub serve`"
            )
        from hub.celery import app

        app.worker_main(["worker", "--loglevel", "INFO", *options["celery_args"]])

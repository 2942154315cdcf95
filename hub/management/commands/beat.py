"""`hub beat`: sends Hub's periodic tasks to the broker (run one, beside `hub worker`)."""

from __future__ import annotations

import argparse
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser


class Command(BaseCommand):
    help = "Run Celery beat for Hub's periodic tasks (any further arguments go to celery)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("celery_args", nargs=argparse.REMAINDER, help="e.g. --loglevel DEBUG")

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.HUB_REDIS_URL:
            raise CommandError(
                "HUB_REDIS_URL is not set: without a broker, `hub serve` runs the periodic jobs"
            )
        from hub.celery import app

        schedule = settings.DATA_DIR / "celerybeat-schedule"
        argv = ["beat", "--loglevel", "INFO", "--schedule", str(schedule)]
        app.start([*argv, *options["celery_args"]])

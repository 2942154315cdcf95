"""`hub serve`: apply migrations, then serve the whole app with gunicorn (threaded workers)."""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from hub.env import env_int


class Command(BaseCommand):
    help = "Apply migrations, then serve Hub with gunicorn on 127.0.0.1:5000."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--bind", default=os.environ.get("HUB_BIND", "127.0.0.1:5000"))
        parser.add_argument("--workers", type=int, default=None)
        parser.add_argument("--threads", type=int, default=None)
        parser.add_argument("--no-migrate", action="store_true", help="skip `migrate`")

    def handle(self, *args: Any, **options: Any) -> None:
        if not options["no_migrate"]:
            call_command("migrate", interactive=False, verbosity=0)
        from hub.server import gunicorn_options

        cpus = os.cpu_count() or 1
        workers = options["workers"] or env_int("HUB_WEB_WORKERS", min(max(cpus, 2), 8), minimum=1)
        threads = options["threads"] or env_int("HUB_WEB_THREADS", 8, minimum=1)
        bind = options["bind"]
        if ":" not in bind and not bind.startswith("unix:"):
            raise CommandError(f"--bind must be HOST:PORT (got {bind!r})")
        gunicorn_options(bind=bind, workers=workers, threads=threads)  # bad settings stop us here
        message = f"Hub serving on http://{bind}/ ({workers} workers x {threads} threads)"
        if settings.HUB_LOG_FORMAT == "json":
            logging.getLogger("hub.serve").info(message)
        else:
            self.stdout.write(message)
        self.stdout.flush()
        sys.stderr.flush()
        # Start afresh as a bare gunicorn master: this process has loaded Django and every
        # app to migrate, and each forked worker would carry that weight again. The workers
        # load the app themselves. Fewer malloc arenas keep threaded workers' memory flat.
        os.environ.setdefault("MALLOC_ARENA_MAX", "2")
        argv = ["--bind", bind, "--workers", str(workers), "--threads", str(threads)]
        os.execv(sys.executable, [sys.executable, "-m", "hub.server", *argv])  # noqa: S606

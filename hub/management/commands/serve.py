"""`hub serve`: apply migrations, then serve the whole app with gunicorn (threaded workers)."""

from __future__ import annotations

import os
from typing import Any

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
        from hub.server import HubServer, gunicorn_options

        cpus = os.cpu_count() or 1
        workers = options["workers"] or env_int("HUB_WEB_WORKERS", min(max(cpus, 2), 8), minimum=1)
        threads = options["threads"] or env_int("HUB_WEB_THREADS", 8, minimum=1)
        bind = options["bind"]
        if ":" not in bind and not bind.startswith("unix:"):
            raise CommandError(f"--bind must be HOST:PORT (got {bind!r})")
        self.stdout.write(f"Hub serving on http://{bind}/ ({workers} workers x {threads} threads)")
        self.stdout.flush()
        HubServer(gunicorn_options(bind=bind, workers=workers, threads=threads)).run()

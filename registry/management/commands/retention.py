"""`hub retention [--dry-run] [--repository NAME]`: apply tag retention policies now."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from registry.policies.retention import run


class Command(BaseCommand):
    help = "Remove the tags that switched-on retention policies say should go."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="list what every policy (on or off) would remove; remove nothing",
        )
        parser.add_argument("--repository", help="only this repository")

    def handle(self, *args: Any, **options: Any) -> None:
        removals = run(dry_run=options["dry_run"], only=options["repository"])
        verb = "would remove" if options["dry_run"] else "removed"
        for r in removals:
            self.stdout.write(f"{verb} {r.repository}:{r.tag} {r.digest} ({r.reason})")
        self.stdout.write(f"{len(removals)} tag(s) {verb}")

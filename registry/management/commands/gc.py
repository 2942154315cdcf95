"""`hub gc`: run a garbage collection now (or show what one would remove)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from registry.services.gc import collect


class Command(BaseCommand):
    help = (
        "Remove untagged manifests (by each repository's policy) and blobs no manifest "
        "references, while Hub keeps serving."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="list the manifests, blobs and bytes that would go; remove nothing",
        )
        parser.add_argument(
            "--grace",
            type=int,
            metavar="SECONDS",
            help="spare blobs touched this recently (default: HUB_GC_GRACE_SECONDS)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        grace = options["grace"]
        if grace is not None and grace < 0:
            raise CommandError("--grace must be 0 or more seconds")
        dry_run = options["dry_run"]
        report = collect(grace_seconds=grace, dry_run=dry_run)
        if report.skipped:
            raise CommandError("another garbage collection is running; try again later")
        verb = "would remove" if dry_run else "removed"
        for repository, digest, size in report.manifests:
            self.stdout.write(f"manifest {repository}@{digest} {size}")
        for digest, size in report.blobs:
            self.stdout.write(f"blob {digest} {size}")
        self.stdout.write(
            f"{verb} {len(report.manifests)} manifests, {len(report.blobs)} blobs,"
            f" {report.bytes_freed} bytes (grace {report.grace_seconds} s)"
        )

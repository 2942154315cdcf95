"""`hub audit seal | verify | export | retention | archive verify | archive import`."""

from __future__ import annotations

import sys
from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit import exporting, retention
from audit.management.archive_command import archive_command
from audit.models import Event
from audit.queries import FILTERS, BadFilter, apply_filters, whole_chains
from audit.sealing import seal_pending
from audit.verify import DEFAULT_GRACE, verify


class Command(BaseCommand):
    help = "The audit trail: seal pending events, verify the chains, export events."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="subcommand", required=True)
        sub.add_parser("seal", help="seal every unsealed event now")
        check = sub.add_parser("verify", help="check the chains; exit 1 naming the first fault")
        check.add_argument("--chain", help='one chain: "site", "org:NAME" or "user:NAME"')
        check.add_argument("--from", dest="since_seq", type=int, help="first seq to check")
        check.add_argument("--to", dest="until_seq", type=int, help="last seq to check")
        check.add_argument(
            "--grace",
            type=int,
            default=int(DEFAULT_GRACE.total_seconds()),
            help="seconds an event may wait for its seal before it counts as inserted",
        )
        export = sub.add_parser("export", help="write sealed events with their seals")
        export.add_argument("--format", choices=exporting.FORMATS, default="jsonl")
        export.add_argument("-o", "--output", help="file to write (default: standard output)")
        for name in FILTERS:
            export.add_argument(f"--{name.replace('_', '-')}", dest=name)
        retention = sub.add_parser(
            "retention", help="archive expired events to the blob store, then remove them"
        )
        retention.add_argument(
            "--dry-run", action="store_true", help="only say what would be archived"
        )
        archive = sub.add_parser("archive", help="check or read back retention archives")
        archive_sub = archive.add_subparsers(dest="archive_command", required=True)
        archive_sub.add_parser("list", help="the archives retention recorded")
        check_archive = archive_sub.add_parser("verify", help="check an archive; exit 1 if bad")
        check_archive.add_argument("target", help="a local file, or an archive's name in the store")
        restore = archive_sub.add_parser(
            "import", help="read an archive back (into audit_importedevent)"
        )
        restore.add_argument("name", help="the archive's name in the store")

    def handle(self, *args: Any, **options: Any) -> None:
        command = options["subcommand"]
        if command == "seal":
            self.stdout.write(f"sealed {seal_pending()} events")
        elif command == "verify":
            self._verify(options)
        elif command == "retention":
            self._retention(options["dry_run"])
        elif command == "archive":
            archive_command(self, options)
        else:
            self._export(options)

    def _retention(self, dry_run: bool) -> None:
        result = retention.run_retention(dry_run=dry_run)
        if dry_run:
            for run in result.planned:
                self.stdout.write(f"would archive {run}, older than {run.cutoff.isoformat()}")
            self.stdout.write(f"dry run: {sum(r.count for r in result.planned)} events expired")
            return
        for done in result.archived:
            self.stdout.write(
                f"archived {done.chain}: seq {done.first_seq}..{done.last_seq} "
                f"({done.count} events) to {done.name}"
            )
        for failure in result.failed:
            self.stderr.write(f"FAIL {failure}")
        if result.failed:
            raise CommandError("audit retention failed for some chains", returncode=1)
        self.stdout.write(f"ok: {sum(a.count for a in result.archived)} events archived")

    def _verify(self, options: dict[str, Any]) -> None:
        report = verify(
            options["chain"],
            options["since_seq"],
            options["until_seq"],
            grace=timedelta(seconds=options["grace"]),
        )
        if not report.ok:
            for problem in report.problems[:20]:
                self.stderr.write(f"FAIL {problem}")
            first = report.problems[0]
            raise CommandError(f"audit chain broken: {first}", returncode=1)
        for chain, seq in sorted(report.chains.items()):
            start, head = report.starts[chain], report.heads[chain]
            if start > seq:
                self.stdout.write(f"{chain}: archived through seq {seq}, head {head}")
            else:
                self.stdout.write(f"{chain}: seq {start}..{seq} ok, head {head}")
        self.stdout.write(f"ok: {report.checked} seals checked")

    def _export(self, options: dict[str, Any]) -> None:
        try:
            events = apply_filters(Event.objects.all(), options)
        except BadFilter as exc:
            raise CommandError(str(exc)) from None
        lines = exporting.render(options["format"], events, whole_chains(options))
        if options["output"]:
            with open(options["output"], "w", encoding="utf-8", newline="") as out:
                out.writelines(lines)
        else:
            sys.stdout.writelines(lines)

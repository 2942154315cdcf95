"""`hub audit seal | verify | export`."""

from __future__ import annotations

import sys
from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit import exporting
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

    def handle(self, *args: Any, **options: Any) -> None:
        command = options["subcommand"]
        if command == "seal":
            self.stdout.write(f"sealed {seal_pending()} events")
        elif command == "verify":
            self._verify(options)
        else:
            self._export(options)

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
            self.stdout.write(f"{chain}: seq 1..{seq} ok, head {report.heads[chain]}")
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

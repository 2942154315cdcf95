"""`hub config export ORG | plan -f FILE | apply -f FILE`: an organisation as code.

Without --as the command runs as the operator of this server (site administrator rights,
recorded in the audit trail as `operator:<login>`); with --as USERNAME, as that user,
with exactly that user's rights. plan exits 0 when nothing would change, 2 when
something would; any error exits 1 naming the line and path in the file.
"""

from __future__ import annotations

import getpass
import sys
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.context import acting_as
from teams.config.apply import apply
from teams.config.changes import Applier
from teams.config.document import ConfigError
from teams.config.export import export_text
from teams.config.plan import Plan, make_plan
from teams.models import Organisation
from teams.permissions import Actor

CHANGES_PENDING = 2


class Command(BaseCommand):
    help = "Export, plan or apply an organisation's configuration document."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="subcommand", required=True)
        export = sub.add_parser("export", help="write the organisation's current document")
        export.add_argument("organisation")
        export.add_argument("-o", "--output", help="file to write (default: standard output)")
        for name, text in (
            ("plan", "say what applying the document would change; change nothing"),
            ("apply", "make the document's changes, all or none"),
        ):
            command = sub.add_parser(name, help=text)
            command.add_argument("-f", "--file", required=True, help="the document (- for stdin)")
            command.add_argument(
                "--prune", action="store_true", help="also remove what the document leaves out"
            )
            command.add_argument(
                "--as", dest="as_user", help="apply with this user's rights (default: operator)"
            )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["subcommand"] == "export":
            self._export(options["organisation"], options["output"])
            return
        text = self._read(options["file"])
        applier = self._applier(options["as_user"])
        run = make_plan if options["subcommand"] == "plan" else apply
        with acting_as(applier.actor, user_agent="hub config"):
            try:
                plan = run(text, applier=applier, prune=options["prune"])
            except ConfigError as exc:
                self.stderr.write(str(exc))
                sys.exit(1)
        self._report(plan, applied=options["subcommand"] == "apply")
        if options["subcommand"] == "plan" and plan.changes:
            sys.exit(CHANGES_PENDING)

    def _export(self, name: str, output: str | None) -> None:
        organisation = Organisation.objects.filter(name=name).first()
        if organisation is None:
            raise CommandError(f"no organisation named {name!r}", returncode=1)
        text = export_text(organisation)
        if output:
            Path(output).write_text(text)
        else:
            self.stdout.write(text, ending="")

    def _read(self, name: str) -> str:
        try:
            return sys.stdin.read() if name == "-" else Path(name).read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"cannot read {name}: {exc}", returncode=1) from None

    def _applier(self, username: str | None) -> Applier:
        if username is None:
            return Applier.command_line(getpass.getuser())
        user = get_user_model().objects.filter(username=username, is_active=True).first()
        if user is None:
            raise CommandError(f"no active user named {username!r}", returncode=1)
        return Applier(actor=Actor(user=user, method="cli"))

    def _report(self, plan: Plan, *, applied: bool) -> None:
        for change in plan.changes:
            self.stdout.write(change.describe())
        summary = plan.as_dict()["summary"]
        counts = ", ".join(f"{n} to {op}" for op, n in summary.items())
        if not plan.changes:
            self.stdout.write(f"{plan.organisation.name}: nothing to change")
        elif applied:
            self.stdout.write(
                f"{plan.organisation.name}: applied {plan.document.sha256[:12]} ({counts})"
            )
        else:
            self.stdout.write(f"{plan.organisation.name}: {counts}")

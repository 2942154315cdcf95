"""The `hub` command: Django's manage.py under another name (plus `hub serve`)."""

from __future__ import annotations

import os
import sys

from django.core.exceptions import ImproperlyConfigured


def _config_error(exc: Exception) -> int:
    print(f"hub: configuration error: {exc}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hub.settings")
    argv = list(sys.argv if argv is None else argv)
    try:
        from django.conf import settings

        settings.INSTALLED_APPS  # noqa: B018 - load settings now, so a bad one stops us here
    except ImproperlyConfigured as exc:
        return _config_error(exc)
    from django.core.management import execute_from_command_line
    from django.db import OperationalError

    try:
        execute_from_command_line(argv)
    except ImproperlyConfigured as exc:
        # Settings read later, by a command (HUB_WEB_WORKERS, HUB_WEB_TIMEOUT, ...).
        return _config_error(exc)
    except OperationalError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"hub: cannot use the database (DATABASE_URL): {first}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

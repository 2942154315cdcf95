"""whitenoise, serving static files straight from the finders (no `collectstatic` step)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from whitenoise.middleware import WhiteNoiseMiddleware


class StaticFilesMiddleware(WhiteNoiseMiddleware):
    def add_files(self, root: Any, prefix: Any = None) -> None:
        # STATIC_ROOT is where `collectstatic` would write; until it has, it is not there,
        # which is normal here (the finders serve the files), not worth a warning.
        if str(root) == str(settings.STATIC_ROOT) and not Path(root).is_dir():
            return
        super().add_files(root, prefix)

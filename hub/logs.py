"""JSON log lines (HUB_LOG_FORMAT=json): one object per line on standard output.

Used by Django's logging (settings.LOGGING) and by gunicorn's own logger, so error
lines, access lines and application lines all come out alike and carry the request
id the audit events of the same request carry.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from typing import Any

from gunicorn.glogging import Logger as GunicornBaseLogger

# Fields an access line adds (as `extra=` of the log call).
ACCESS_FIELDS = ("method", "path", "status", "duration", "bytes", "remote_addr", "user_agent")


def _current_request_id() -> str | None:
    # Looked up in sys.modules, not imported: the gunicorn master formats lines too, and
    # must not load Django apps to do so.
    context = sys.modules.get("audit.context")
    if context is None:
        return None
    ctx = context.current()
    return ctx.request_id if ctx is not None else None


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = (
            getattr(record, "request_id", None)
            or _current_request_id()
            # django.request logs after the request's context is gone, with the request.
            or getattr(
                getattr(getattr(record, "request", None), "audit_context", None), "request_id", None
            )
        )
        if request_id:
            line["request_id"] = request_id
        for name in ACCESS_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class JsonGunicornLogger(GunicornBaseLogger):
    """gunicorn's logger with JSON lines; access lines get the fields of ACCESS_FIELDS."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for logger in (self.error_log, self.access_log):
            for handler in logger.handlers:
                handler.setFormatter(JsonFormatter())
                # One stream for every line, as collectors of container output expect.
                if isinstance(handler, logging.StreamHandler) and handler.stream is sys.stderr:
                    handler.setStream(sys.stdout)

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> None:
        if not self.access_log_enabled:
            return
        status = resp.status.split(None, 1)[0] if isinstance(resp.status, str) else resp.status
        duration = request_time.total_seconds() if request_time is not None else None
        path = environ.get("PATH_INFO", "")
        self.access_log.info(
            "%s %s %s",
            environ.get("REQUEST_METHOD", ""),
            path,
            status,
            extra={
                # Set by audit.context's middleware on the WSGI environ (request.META).
                "request_id": environ.get("hub.request_id"),
                "method": environ.get("REQUEST_METHOD", ""),
                "path": path,
                "status": int(status) if str(status).isdigit() else status,
                "duration": round(duration, 6) if duration is not None else None,
                "bytes": getattr(resp, "sent", None),
                "remote_addr": environ.get("REMOTE_ADDR", ""),
                "user_agent": environ.get("HTTP_USER_AGENT", ""),
            },
        )

"""/healthz and /readyz: plain WSGI, before any middleware.

Probes arrive every few seconds from every load balancer and orchestrator: they carry
no credentials, must not add audit events, and should cost as little as possible.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from typing import Any

from django.db import close_old_connections, connection

log = logging.getLogger(__name__)

StartResponse = Callable[..., Any]

PATHS = ("/healthz", "/readyz")


def _answer(
    environ: dict[str, Any], start_response: StartResponse, status: str, body: dict[str, Any]
) -> list[bytes]:
    data = json.dumps(body).encode()
    start_response(
        status,
        [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(data))),
            ("Cache-Control", "no-store"),
        ],
    )
    return [b""] if environ.get("REQUEST_METHOD") == "HEAD" else [data]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:300]


def problems() -> dict[str, str]:
    """What keeps this node from serving: {"database": reason, "storage": reason}."""
    from registry.storage import get_storage

    found: dict[str, str] = {}
    # Django opens and recycles connections on request start and end; we run outside
    # its handler, so do the same here (a dead connection must not stick).
    close_old_connections()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:
        found["database"] = _first_line(exc)
    finally:
        close_old_connections()
    try:
        get_storage().check()
    except Exception as exc:
        found["storage"] = _first_line(exc)
    return found


def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
        start_response("405 Method Not Allowed", [("Allow", "GET, HEAD"), ("Content-Length", "0")])
        return [b""]
    if environ.get("PATH_INFO") == "/healthz":
        # Alive: the process answers. Nothing outside it is asked, so a database outage
        # does not make an orchestrator restart every node at once.
        return _answer(environ, start_response, "200 OK", {"status": "alive"})
    found = problems()
    if found:
        log.warning("not ready: %s", found)
        return _answer(
            environ,
            start_response,
            "503 Service Unavailable",
            {"status": "unavailable", "reasons": found},
        )
    return _answer(environ, start_response, "200 OK", {"status": "ready"})

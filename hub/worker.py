"""The gunicorn worker class of `hub serve`.

A module of its own: importing gunicorn's workers marks a process as a gunicorn one
(audit.sealing looks for them), so only gunicorn itself imports this.
"""

from __future__ import annotations

from gunicorn.workers.gthread import ThreadWorker


class HubWorker(ThreadWorker):
    """gunicorn's threaded worker, refusing new connections as soon as it is told to stop.

    On SIGTERM gunicorn stops polling its listening socket but keeps it open until the
    in-flight requests are done; meanwhile the kernel still completes handshakes into
    the backlog, and those clients hang until the grace period ends. Closed at once, a
    connection attempt is refused and a proxy retries another node.
    """

    def set_accept_enabled(self, enabled: bool) -> None:
        super().set_accept_enabled(enabled)
        if not enabled and not self.alive:
            for listener in self.sockets:
                listener.close()

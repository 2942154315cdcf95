"""Sending tasks: after the commit of the change they depend on."""

from __future__ import annotations

from typing import Any

from django.db import transaction


def send_on_commit(task: Any, *args: Any, **kwargs: Any) -> None:
    """Send `task` once the current transaction commits (at once outside one).

    A rolled-back change sends nothing. Without a broker the task runs right then, in
    this process; its failure is logged, never raised into the request that committed.
    """
    transaction.on_commit(lambda: task.delay(*args, **kwargs), robust=True)

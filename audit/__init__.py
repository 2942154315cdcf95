"""The audit trail: who did what, from where, with what outcome; append-only and hash-chained.

`audit.record(...)` is the one way to write an event (see audit.recording).
"""

from __future__ import annotations

from typing import Any


def record(**kwargs: Any) -> Any:
    """Insert one event in the caller's transaction; see audit.recording.record."""
    from audit.recording import record as _record

    return _record(**kwargs)

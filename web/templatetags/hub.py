"""Small template filters for the web UI."""

from __future__ import annotations

from django import template

register = template.Library()


@register.filter
def shortdigest(digest: str) -> str:
    """sha256:0123456789ab… → the algorithm and the first 12 hex digits."""
    algorithm, sep, hexpart = str(digest).partition(":")
    return f"{algorithm}:{hexpart[:12]}" if sep else str(digest)[:19]


@register.filter
def joinargs(value: list[str] | None) -> str:
    return " ".join(value or [])

"""Repository descriptions: Markdown, rendered and then sanitised (nh3), never trusted."""

from __future__ import annotations

import markdown as md
import nh3
from django.utils.safestring import SafeString, mark_safe

_TAGS = {
    *("p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "code"),
    *("em", "strong", "del", "a", "ul", "ol", "li", "dl", "dt", "dd"),
    *("table", "thead", "tbody", "tr", "th", "td"),
}
# No images: a description must not make every visitor's browser fetch from elsewhere.
_ATTRIBUTES = {"a": {"href", "title"}, "th": {"align"}}


def render(text: str) -> SafeString:
    html = md.markdown(text, extensions=["fenced_code", "tables"], output_format="html")
    cleaned = nh3.clean(
        html,
        tags=_TAGS,
        attributes=_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )
    return mark_safe(cleaned)  # noqa: S308 - sanitised by nh3 just above

"""User text: a safe Markdown subset rendered by markdown-it-py and sanitised by nh3."""

from __future__ import annotations

import re
from html import escape

import nh3
from markdown_it import MarkdownIt

_md = (
    MarkdownIt("commonmark", {"html": False, "breaks": True, "linkify": False})
    .disable(["image", "heading", "lheading", "html_block", "html_inline", "hr", "reference"])
)

ALLOWED_TAGS = {"p", "br", "em", "strong", "ul", "ol", "li", "a", "blockquote", "code", "pre"}
ALLOWED_ATTRIBUTES = {"a": {"href"}, "ol": {"start"}}
MENTION_RE = re.compile(r"(?<![\w@/.])@([a-z0-9_]{2,32})\b", re.IGNORECASE)
_SKIP_RE = re.compile(r"(<code>.*?</code>|<a\s[^>]*>.*?</a>|<[^>]+>)", re.DOTALL)


def mentioned_handles(body: str) -> set[str]:
    return {m.group(1).lower() for m in MENTION_RE.finditer(body)}


def render(body: str, mentions: dict[str, int] | None = None) -> str:
    """Markdown to safe HTML; ``mentions`` maps handle -> user id of people who may be named."""
    html = nh3.clean(
        _md.render(body),
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow ugc",
    )
    if not mentions:
        return html

    def _mark(text: str) -> str:
        def _one(match: re.Match) -> str:
            handle = match.group(1).lower()
            if handle in mentions:
                return f'<span class="mention" data-user-id="{mentions[handle]}">@{escape(handle)}</span>'
            return match.group(0)

        return MENTION_RE.sub(_one, text)

    parts = _SKIP_RE.split(html)
    return "".join(part if _SKIP_RE.fullmatch(part) else _mark(part) for part in parts)


def excerpt(body: str, length: int = 140) -> str:
    text = " ".join(body.split())
    return text if len(text) <= length else text[: length - 1].rstrip() + "…"

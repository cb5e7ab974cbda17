"""Markdown to safe HTML: rendered by markdown-it (raw HTML off), then cleaned by nh3."""

from __future__ import annotations

from functools import lru_cache

import nh3
from markdown_it import MarkdownIt

ALLOWED_TAGS = {
    "p",
    "br",
    "strong",
    "em",
    "ul",
    "ol",
    "li",
    "blockquote",
    "code",
    "pre",
    "h1",
    "h2",
    "h3",
    "h4",
    "a",
    "hr",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
    "del",
}


@lru_cache(maxsize=1)
def _parser() -> MarkdownIt:
    return MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")


CACHED_CHARS = 2000  # texts up to this length keep their HTML (entries' bodies, mostly)
CACHED_TEXTS = 1024  # at most this many: a few MB at worst, per process


def render(text: str) -> str:
    """``text`` as safe HTML. A pure function of the text, so short texts' HTML is kept
    (LRU): a feed page shows the same entries to every reader, and rendering their bodies
    again was a good part of reading it."""
    return _kept(text) if len(text) <= CACHED_CHARS else _render(text)


@lru_cache(maxsize=CACHED_TEXTS)
def _kept(text: str) -> str:
    return _render(text)


def _render(text: str) -> str:
    html = _parser().render(text)
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes={"a": {"href", "title"}},
        url_schemes={"https", "http", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )

"""Markdown goes through the sanitiser (SECURITY.md 15) and commits are durable (24)."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from hypervision.core.markdown import render
from hypervision.policy.roles import Role
from tests.factories import ENTRY, officer

HOSTILE = (
    '<script>alert("x")</script>',
    "<img src=x onerror=alert(1)>",
    "[clic](javascript:alert(1))",
    '<a href="data:text/html;base64,PHNjcmlwdD4=">x</a>',
    "<iframe src=//evil.example></iframe>",
    "<svg onload=alert(1)>",
    '<div style="background:url(javascript:alert(1))">x</div>',
    "[x](vbscript:msgbox(1))",
)


class Elements(HTMLParser):
    """Every element and attribute of a fragment (text, escaped or not, is inert)."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, attrs))


def active_parts(html: str) -> list[str]:
    parser = Elements()
    parser.feed(html)
    problems = []
    for tag, attrs in parser.found:
        if tag in {"script", "iframe", "svg", "object", "embed", "style", "form", "img", "div"}:
            problems.append(tag)
        for name, value in attrs:
            if name.startswith("on") or name == "style":
                problems.append(f"{tag}[{name}]")
            if name in {"href", "src"} and (value or "").strip().lower().split(":")[0] not in {
                "http",
                "https",
                "mailto",
            }:
                problems.append(f"{tag}[{name}={value}]")
    return problems


@pytest.mark.parametrize("body", HOSTILE)
def test_markdown_never_yields_active_content(body: str) -> None:
    html = render(f"Avant {body} après **gras** [lien](https://example.org)")
    assert active_parts(html) == [], (body, html)
    assert "<strong>gras</strong>" in html and 'href="https://example.org"' in html


def test_kept_html_is_the_html_of_its_text_and_long_texts_are_not_kept() -> None:
    from hypervision.core import markdown

    short = "Avant <script>alert(1)</script> **gras**"
    first = render(short)
    assert render(short) == first == markdown._render(short)  # served again, the same
    assert active_parts(first) == []
    before = markdown._kept.cache_info()
    long = "x" * (markdown.CACHED_CHARS + 1)
    assert render(long) == render(long) == markdown._render(long)
    after = markdown._kept.cache_info()
    assert (after.hits, after.currsize) == (before.hits, before.currsize)  # never kept
    assert markdown._kept.cache_info().maxsize == markdown.CACHED_TEXTS


async def test_entries_deliver_sanitised_html(app: FastAPI, client: AsyncClient) -> None:
    alice = await officer(app, client, "alice", "PP")
    body = " ".join(HOSTILE)
    created = await client.post("/api/v1/entries", json={**ENTRY, "body": body}, headers=alice)
    assert created.status_code == 201, created.text
    read = (await client.get(f"/api/v1/entries/{created.json()['id']}", headers=alice)).json()
    assert read["body"] == body  # the text as written, kept
    assert active_parts(read["body_html"]) == [], read["body_html"]


async def test_commits_are_synchronous(app: FastAPI) -> None:
    """A 2xx means committed: SQLite synchronous=FULL (2), PostgreSQL synchronous_commit=on."""
    async with app.state.engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            assert await conn.scalar(text("PRAGMA synchronous")) == 2
            assert await conn.scalar(text("PRAGMA journal_mode")) == "wal"
        else:
            assert await conn.scalar(text("SHOW synchronous_commit")) == "on"
            assert await conn.scalar(text("SHOW fsync")) == "on"


async def test_constraint_errors_reveal_nothing(app: FastAPI, client: AsyncClient) -> None:
    """SECURITY.md 8: a uniqueness or foreign-key error (which bypasses RLS) answers like any
    conflict, without the constraint, the key or the row it met."""
    hidden = "3f2b8c1e-hidden-row-0000"

    async def clash() -> None:
        raise IntegrityError(
            "INSERT INTO entries ...",
            {},
            Exception(f'duplicate key value violates unique constraint "pk_entries" ({hidden})'),
        )

    app.add_api_route("/api/v1/_clash", clash, methods=["POST"])
    answer = await client.post("/api/v1/_clash")
    assert answer.status_code == 409
    assert answer.json()["error"]["code"] == "conflict"
    for secret in (hidden, "pk_entries", "duplicate key", "INSERT"):
        assert secret not in answer.text


async def test_names_longer_than_their_column_are_refused(
    app: FastAPI, client: AsyncClient
) -> None:
    """Found by `make fuzz` on PostgreSQL: a schedule or token name longer than its column
    answered 500 (SQLite does not enforce lengths); the schema now says the column's limit."""
    chief = await officer(app, client, "chief", "CNCS", roles=(Role.WATCH_OFFICER,))
    admin = await officer(app, client, "admin", "CNCS", roles=(Role.ADMINISTRATOR,))
    for who, url, body, longest in (
        (chief, "/api/v1/synthesis-schedules", {"times": ["07:00"]}, 120),
        (admin, "/api/v1/api-tokens", {"username": "admin", "scopes": ["read"]}, 100),
    ):
        refused = await client.post(url, json={**body, "name": "x" * (longest + 1)}, headers=who)
        assert refused.status_code == 422, refused.text
        assert refused.json()["error"]["fields"][0]["field"] == "name"
        accepted = await client.post(url, json={**body, "name": "x" * longest}, headers=who)
        assert accepted.status_code == 201, accepted.text

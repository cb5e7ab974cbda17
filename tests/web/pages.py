"""Helpers for the web app's tests: sign in through the form, read the CSRF token, read a
form's fields as a browser would send them."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from httpx import AsyncClient, Response

from tests.factories import PASSWORD

CSRF = re.compile(r'name="csrf-token" content="([^"]*)"')


def csrf_of(page: Response) -> str:
    found = CSRF.search(page.text)
    assert found and found.group(1), "no CSRF token on the page"
    return found.group(1)


async def browse_as(client: AsyncClient, username: str, password: str = PASSWORD) -> str:
    """Sign in through the sign-in form (the client keeps the cookie); returns the CSRF token."""
    response = await client.post(
        "/connexion", data={"username": username, "password": password, "suite": "/aide"}
    )
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/aide"
    return csrf_of(await client.get("/aide"))


class _FormReader(HTMLParser):
    def __init__(self, form_id: str) -> None:
        super().__init__(convert_charrefs=True)
        self.form_id, self.inside = form_id, False
        self.fields: list[tuple[str, str]] = []
        self._select: str | None = None
        self._options: list[tuple[str, bool]] = []
        self._textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.inside = found.get("id") == self.form_id
        if not self.inside:
            return
        name = found.get("name", "")
        if tag == "input" and name and found.get("type") not in ("submit", "file"):
            if found.get("type") not in ("checkbox", "radio") or "checked" in found:
                self.fields.append((name, found.get("value", "")))
        elif tag == "select":
            self._select, self._options = name, []
        elif tag == "option" and self._select is not None:
            self._options.append((found.get("value", ""), "selected" in found))
        elif tag == "textarea":
            self._textarea = name
            self.fields.append((name, ""))

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            name, text = self.fields.pop()
            self.fields.append((name, text + data))

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.inside = False
        elif tag == "select" and self._select is not None:
            chosen = [v for v, selected in self._options if selected] or [
                v for v, _ in self._options[:1]
            ]
            self.fields += [(self._select, v) for v in chosen]
            self._select = None
        elif tag == "textarea":
            self._textarea = None


def form_fields(page: Response, form_id: str) -> list[tuple[str, str]]:
    """The fields the form ``form_id`` sends as shown (no button): checked boxes only, the
    selected option of each select, textareas' text."""
    reader = _FormReader(form_id)
    reader.feed(page.text)
    assert reader.fields, f"no form {form_id!r} with fields on the page"
    return reader.fields

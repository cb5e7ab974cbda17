"""Jinja2 rendering: one environment, per-request translations, the page chrome's context."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from babel.dates import format_datetime
from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from hypervision.config import Settings
from hypervision.core import charts
from hypervision.core.i18n import Translator
from hypervision.core.timezone import PARIS
from hypervision.identity.csrf import mask
from hypervision.identity.principal import Principal
from hypervision.web.statics import dsfr_stylesheets, static_url

TEMPLATES = Path(__file__).parent / "templates"

env = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(default=True, default_for_string=True),
    extensions=["jinja2.ext.i18n"],
    trim_blocks=True,
    lstrip_blocks=True,
)
env.install_null_translations(newstyle=True)  # type: ignore[attr-defined]  # per render: locale
env.globals["static"] = static_url  # fingerprinted URLs: {{ static('app.js') }}
env.globals["dsfr_stylesheets"] = dsfr_stylesheets
env.filters["fromiso"] = datetime.fromisoformat  # instants carried as text (module data)
# Charts (_chart.html; ADR 0043): a spec checked, its accessible table, an id per chart.
env.globals["chart_spec"] = charts.parse_spec
env.globals["chart_table"] = charts.table_of
_chart_ids = itertools.count(1)
env.globals["chart_id"] = lambda: f"graphique-{next(_chart_ids)}"


@dataclass
class Chrome:
    """What every page's frame shows: who is signed in, the marking, the badge, the tour."""

    principal: Principal | None = None
    full_name: str = ""
    organisation: str = ""
    csrf_token: str = ""
    badge: int = 0
    inbox: int = 0  # syntheses received and not acknowledged yet (authorities)
    alerts: int = -1  # new security alerts (security officers; -1: not one)
    tour_pending: bool = False
    follow_categories: list[str] = field(default_factory=list)
    follow_situations: list[str] = field(default_factory=list)
    follow_entries: list[str] = field(default_factory=list)
    follows_read: bool = False  # the two lists above are the officer's (not just empty)
    levels: set[str] = field(default_factory=set)


def chrome_of(request: Request) -> Chrome:
    chrome = getattr(request.state, "chrome", None)
    if chrome is None:
        chrome = request.state.chrome = Chrome()
    return chrome


def shows(request: Request, levels: Iterable[str]) -> None:
    """Record the labels of what the page displays: the marking is computed from them."""
    chrome_of(request).levels.update(levels)


def translator(request: Request) -> Translator:
    found = getattr(request.state, "translator", None)
    if found is None:
        found = request.state.translator = Translator(getattr(request.state, "locale", "fr"))
    return found


class Bilingual(Protocol):
    @property
    def fr(self) -> str: ...
    @property
    def en(self) -> str: ...


def in_words(request: Request, error: Bilingual) -> str:
    """An error's message in the page's language."""
    return error.en if translator(request).locale == "en" else error.fr


def when(value: datetime | None, locale: str, pattern: str = "d MMM yyyy HH:mm") -> str:
    if value is None:
        return ""
    return format_datetime(value, pattern, tzinfo=PARIS, locale=locale)


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    return html_response(request, render_text(request, template, context), status_code, headers)


def html_response(
    request: Request, html: str, status_code: int = 200, headers: dict[str, str] | None = None
) -> HTMLResponse:
    """``html`` (a rendered page or fragment) as the pages answer it."""
    response = HTMLResponse(html, status_code=status_code, headers=headers)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Language"] = translator(request).locale
    return response


def render_text(request: Request, template: str, context: dict[str, Any] | None = None) -> str:
    """``template`` rendered for ``request`` (its language, its chrome), as text."""
    settings: Settings = request.app.state.settings
    tr = translator(request)
    chrome = chrome_of(request)
    values: dict[str, Any] = {
        "request": request,
        "settings": settings,
        "locale": tr.locale,
        # The CSRF token masked afresh in every page (compressed pages: BREACH).
        "chrome": replace(chrome, csrf_token=mask(chrome.csrf_token)),
        "marking": settings.marking(chrome.levels),
        "when": lambda value, pattern="d MMM yyyy HH:mm": when(value, tr.locale, pattern),
        **tr.callables(),
        **(context or {}),
    }
    return env.get_template(template).render(values)

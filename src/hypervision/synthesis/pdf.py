"""The synthesis as a PDF (WeasyPrint): page 1 what an authority reads first (the Marianne
block, title, protection, a summary of the figures and the analysis), then the key figures,
the map and the entries table; the protection marking at the top and bottom of every page and
a watermark naming the reader it was made for; PDF metadata set."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from hypervision.core.assets import VENDOR
from hypervision.core.i18n import CATEGORY_NAMES, SEVERITY_NAMES, STATUS_NAMES, Translator
from hypervision.core.markdown import render as markdown
from hypervision.core.timezone import PARIS
from hypervision.logbook.schemas import EntryRead
from hypervision.synthesis.figure import map_svg

TEMPLATES = Path(__file__).parent / "templates"
FONTS = VENDOR / "dsfr" / "fonts"
env = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)


def html_of(
    *,
    synthesis: dict[str, Any],
    entries: list[EntryRead],
    marking: str | None,
    reader: str,
    printed_at: datetime,
    locale: str = "fr",
) -> str:
    t = Translator(locale)
    located = [
        (n, e.severity.value, e.location) for n, e in enumerate(entries, start=1) if e.location
    ]
    return env.get_template("synthesis.html").render(
        s=synthesis,
        entries=entries,
        marking=marking,
        reader=reader,
        reader_css=css_text(reader),
        marking_css=css_text(marking or ""),
        printed=printed_at.astimezone(PARIS).strftime("%d/%m/%Y %H:%M"),
        narrative_html=markdown(synthesis["narrative"]),
        figure=map_svg(located),
        categories=CATEGORY_NAMES,
        severities=SEVERITY_NAMES,
        statuses=STATUS_NAMES,
        paris=PARIS,
        fonts=FONTS.as_uri() if FONTS.exists() else "",
        _=t.gettext,
    )


def css_text(value: str) -> str:
    """Text safe inside a CSS string of the page's margin boxes (no quote, backslash, angle
    bracket or control character can close it)."""
    return "".join(c for c in value if c.isprintable() and c not in "\"'\\<>&")[:120]


def pdf_of(html: str) -> bytes:
    from weasyprint import HTML

    document = HTML(string=html, base_url=str(TEMPLATES)).render()
    return bytes(document.write_pdf())

"""The chart macro (``_chart.html``): a figure whose drawing is hidden from assistive
technologies and whose numbers are a DSFR table behind a button; the spec travels as JSON
that no category name can break out of. ECharts (about 1 MB) is linked by no page: app.js
loads it when a chart shows, from a pointer every page carries."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient

from hypervision.core.charts import ChartSpec, parse_spec
from hypervision.web import statics
from hypervision.web.render import env
from tests.factories import make_org, make_user
from tests.web.pages import browse_as

SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
HOSTILE = "</script><script>alert(1)</script>"


def render(spec: Any, caption: str, **extra: Any) -> str:
    macro = env.get_template("_chart.html").module.chart  # type: ignore[attr-defined]
    return str(macro(spec, caption, **extra))


class Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, dict(attrs)))

    def one(self, tag: str, **wanted: str) -> dict[str, str | None]:
        hits = [
            a for t, a in self.found if t == tag and all(a.get(k) == v for k, v in wanted.items())
        ]
        assert len(hits) == 1, (tag, wanted, hits)
        return hits[0]


def parsed(html: str) -> Elements:
    elements = Elements()
    elements.feed(html)
    return elements


SPEC = {
    "kind": "bar",
    "stacked": True,
    "categories": ["Stade", HOSTILE],
    "series": [{"name": "Entrées", "values": [3, 1]}, {"name": "Sorties", "values": [2, None]}],
    "x_label": "Site",
}


def test_the_figure_hides_the_drawing_and_offers_the_table() -> None:
    html = render(SPEC, "Entrées par site", id="g1")
    page = parsed(html)
    figure = page.one("figure", id="g1")
    assert figure["aria-labelledby"] == "g1-titre"
    assert page.one("figcaption", id="g1-titre") is not None
    drawings = [a for t, a in page.found if "data-chart" in a]
    assert len(drawings) == 1 and drawings[0]["aria-hidden"] == "true"
    button = page.one("button", **{"aria-controls": "g1-donnees"})
    assert button["aria-expanded"] == "false"
    assert "fr-collapse" in (page.one("div", id="g1-donnees")["class"] or "")
    assert "Show the data as a table" in html  # French once translated (test_i18n)
    assert re.search(r"<caption>Entrées par site</caption>", html)
    headers = [a for t, a in page.found if t == "th"]
    assert [h["scope"] for h in headers] == ["col"] * 4 + ["row"] * 2
    assert '<td class="hv-chart__value">5</td>' in html  # the stacked total


def test_the_spec_cannot_break_out_of_its_attribute() -> None:
    """In an attribute, not a script element: htmx (allowScriptTags false) drops scripts."""
    html = render(SPEC, "Entrées par site", id="g1")
    assert HOSTILE not in html and "<script" not in html
    drawings = [a for t, a in parsed(html).found if "data-chart" in a]
    spec = parse_spec(json.loads(drawings[0]["data-chart"] or ""))
    assert spec.categories == ["Stade", HOSTILE] and spec.stacked
    assert "&lt;/script&gt;" in html  # the table's cell, escaped


def test_a_spec_object_renders_and_ids_differ() -> None:
    spec = ChartSpec.model_validate(SPEC)
    first, second = render(spec, "Un"), render(spec, "Deux")
    ids = [parsed(h).found[0][1]["id"] for h in (first, second)]
    assert ids[0] != ids[1] and all(i and i.startswith("graphique-") for i in ids)


def test_heights_follow_the_lines_to_show() -> None:
    many = {
        "kind": "bar",
        "horizontal": True,
        "categories": [f"c{i}" for i in range(30)],
        "series": [{"name": "n", "values": [1.0] * 30}],
    }
    assert "hv-chart__drawing--xl" in render(many, "Beaucoup")
    assert "hv-chart__drawing--m" in render(SPEC, "Peu")


@pytest.fixture
async def agent(app: FastAPI, client: AsyncClient) -> str:
    await make_org(app, "PREF")
    await make_user(app, "agent", "PREF", clearance="DR")
    return await browse_as(client, "agent")


@SQLITE_ONLY
async def test_no_page_links_echarts_but_every_page_points_to_it(
    client: AsyncClient, agent: str
) -> None:
    pointers = []
    for path in ("/main-courante", "/carte", "/aide"):
        page = await client.get(path)
        assert page.status_code == 200, path
        assert "echarts" not in " ".join(re.findall(r"<script[^>]*>", page.text)), path
        pointers += re.findall(
            r'<meta name="hv-charts" content="([^"]+)" data-echarts="([^"]+)"', page.text
        )
    assert len(pointers) == 3 and len(set(pointers)) == 1
    script, engine = pointers[0]
    for url in (script, engine):
        assert re.match(r"^/static/[0-9a-f]{12}/", url)
        served = await client.get(url)
        assert served.status_code == 200, url
        assert served.headers["cache-control"] == statics.IMMUTABLE
    assert engine.endswith("vendor/echarts/echarts.min.js") and script.endswith("/charts.js")


def test_an_empty_chart_says_so_and_draws_nothing() -> None:
    empty = {"kind": "bar", "categories": [], "series": [{"name": "n", "values": []}]}
    html = render(empty, "Rien", id="g2")
    assert "Nothing to count here." in html
    assert "data-chart" not in html and "<table" not in html

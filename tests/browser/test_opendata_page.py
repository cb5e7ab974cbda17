"""A public dataset's page, read without signing in: its chart (ECharts, with the table
behind its button) and its map (Leaflet) show, nothing it loads asks for a sign-in, and it
is axe-clean."""

from __future__ import annotations

import json

from playwright.async_api import Response, expect

from hypervision.policy.roles import Role
from tests.browser.test_accessibility import axe, report
from tests.browser.web import AXE, SQLITE_ONLY, Web, screenshot, t, unavailable

pytestmark = SQLITE_ONLY

SCHEMA = {
    "fields": [
        {"name": "site", "type": "string"},
        {"name": "geometry", "type": "geojson"},
        {"name": "agents", "type": "integer"},
    ]
}
SITES = {"Stade de France": [2.36, 48.92], "Trocadéro": [2.29, 48.86], "Bercy": [2.38, 48.84]}


async def test_an_anonymous_reader_sees_the_chart_and_the_map(web: Web) -> None:
    if not AXE.exists():
        unavailable(f"{AXE} is missing: run `npm ci --ignore-scripts` at the repository root")
    await web.org("SANTE")
    for name in ("claire.martin", "paul.durand"):
        await web.user(name, "SANTE", roles=[Role.DATA_STEWARD])
    product = await web.api(
        "claire.martin",
        "POST",
        "/products",
        json={"slug": "secteurs", "name": "Secteurs", "table_schema": SCHEMA,
              "rules": {"rows": [], "rows_default": "allow", "columns": []},
              "label": {"level": "NP", "need_to_know": [], "audience": []}},
    )  # fmt: skip
    features = [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": at},
         "properties": {"site": site, "agents": 40 * (i + 1)}}
        for i, (site, at) in enumerate(SITES.items())
    ]  # fmt: skip
    body = json.dumps({"type": "FeatureCollection", "features": features}).encode()
    await web.api("claire.martin", "POST", f"/products/{product['id']}/imports",
                  files={"file": ("secteurs.geojson", body, "application/geo+json")})  # fmt: skip
    proposal = await web.api(
        "claire.martin",
        "POST",
        "/publications",
        json={"product_id": product["id"], "slug": "secteurs", "title": "Agents par secteur",
              "description": "Agents déployés", "columns": ["site", "geometry", "agents"]},
    )  # fmt: skip
    await web.api("paul.durand", "POST", f"/publications/{proposal['id']}/approve")

    page = await web.page(bypass_csp=True)  # axe is injected
    refused: list[str] = []

    def check(response: Response) -> None:
        if response.status >= 400 or "/connexion" in response.url:
            refused.append(f"{response.status} {response.url}")

    page.on("response", check)
    await page.goto("/opendata/secteurs", wait_until="domcontentloaded")
    await expect(page.locator("h1")).to_have_text("Agents par secteur")
    # The chart, drawn by ECharts, and its numbers behind the button.
    drawing = page.locator(".hv-chart__drawing[data-chart-ready='1'] canvas").first
    await expect(drawing).to_be_visible(timeout=60_000)  # ECharts (1 MB) loads when one shows
    await page.get_by_role("button", name=t("Show the data as a table")).click()
    table = page.locator("#graphique-donnees table")
    await expect(table).to_be_visible()
    await expect(table).to_contain_text("Bercy")
    await expect(table).to_contain_text("120")
    # The map, with a marker per located row.
    await expect(page.locator("#carte-donnees .leaflet-container")).to_be_visible()
    await expect(page.locator("#carte-donnees .leaflet-marker-icon")).to_have_count(len(SITES))
    violations = {"dataset-page": await axe(page)}
    await screenshot(page, "opendata-dataset-page")
    assert not any(violations.values()), report(violations)
    assert refused == [], refused
    assert not [c for c in await page.context.cookies() if c["name"] == "hv_session"]

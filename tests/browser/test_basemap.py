"""The self-hosted vector base map in the browser: the map page and the entry form draw the
operator's PMTiles file, read by byte ranges from the application (206), under the pages' CSP."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.async_api import Page, Response, expect

from hypervision.config import Settings
from hypervision.web.map_pages import BASEMAP_URL
from tests.basemap_file import write_base_map
from tests.browser.test_accessibility import axe
from tests.browser.web import SQLITE_ONLY, Web, screenshot
from tests.conftest import make_settings


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return make_settings(
        tmp_path, database_url, map_pmtiles=write_base_map(tmp_path / "france.pmtiles")
    )


# The colours on the tile canvases that the map drew: earth, water and the road across.
COLOURS = """() => {
  const seen = new Set();
  const tiles = '#carte .leaflet-tile-pane canvas, #carte-saisie .leaflet-tile-pane canvas';
  for (const canvas of document.querySelectorAll(tiles)) {
    if (!canvas.width) continue;
    const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
    for (let i = 0; i < data.length; i += 4 * 97) {
      seen.add([data[i], data[i + 1], data[i + 2], data[i + 3]].join(','));
    }
  }
  return [...seen].filter(c => !c.endsWith(',0'));
}"""


async def colours(page: Page, wanted: int = 3) -> list[str]:
    """The colours drawn, once ``wanted`` of them are (tiles are drawn a few ms apart)."""
    found: list[str] = []
    for _ in range(50):
        found = await page.evaluate(COLOURS)
        if len(found) >= wanted:
            break
        await page.wait_for_timeout(200)
    return found


async def ranges_of(page: Page, path: str, ranges: list[Response]) -> None:
    page.on("response", lambda r: ranges.append(r) if BASEMAP_URL in r.url else None)
    await page.goto(path)


@SQLITE_ONLY  # the base map does not depend on the engine
async def test_the_map_draws_the_pmtiles_base_map(web: Web) -> None:
    await web.org("PP")
    await web.user("antoine.roux", "PP")
    page = await web.signed_in("antoine.roux", "/aide")
    answers: list[Response] = []
    await ranges_of(page, "/carte?lat=48.8566&lon=2.3522&z=12", answers)
    carte = page.locator("#carte")
    await expect(carte).to_have_attribute("data-base", "pmtiles")
    await expect(
        carte.locator(".leaflet-tile-pane canvas.leaflet-tile-loaded").first
    ).to_be_attached()
    assert len(await colours(page)) == 3  # not blank: earth, water, road
    assert not await carte.locator(".leaflet-overlay-pane path").count()  # no fallback drawn
    assert len(answers) >= 2 and {r.status for r in answers} == {206}
    assert all(r.headers["accept-ranges"] == "bytes" for r in answers)
    await expect(carte.locator(".leaflet-control-attribution")).to_contain_text("OpenStreetMap")
    await screenshot(page, "carte-fond-pmtiles")

    answers.clear()
    await ranges_of(page, "/main-courante/nouvelle", answers)
    picker = page.locator("#carte-saisie")
    await expect(picker).to_have_attribute("data-base", "pmtiles")
    assert len(await colours(page)) == 3
    assert answers and {r.status for r in answers} == {206}


@SQLITE_ONLY
async def test_a_missing_pmtiles_file_falls_back_to_the_boundaries(
    web: Web, settings: Settings
) -> None:
    assert settings.map_pmtiles is not None
    settings.map_pmtiles.unlink()
    await web.org("PP")
    await web.user("antoine.roux", "PP")
    page = await web.signed_in("antoine.roux", "/carte")
    carte = page.locator("#carte")
    await expect(carte).to_have_attribute("data-base", "boundaries")
    await expect(carte).to_have_attribute("data-boundaries-drawn", "96")


@SQLITE_ONLY
async def test_the_map_with_its_base_map_and_a_popup_has_no_axe_violation(web: Web) -> None:
    await web.org("PP")
    await web.user("antoine.roux", "PP")
    await web.entry(
        "antoine.roux",
        title="Colis suspect",
        severity="critical",
        location={"type": "Point", "coordinates": [2.3522, 48.8566]},
    )
    # axe is injected as a script: a context that bypasses the CSP (test_accessibility.py).
    page = await web.signed_in(
        "antoine.roux", "/carte?lat=48.8566&lon=2.3522&z=13", bypass_csp=True
    )
    await expect(page.locator("#carte")).to_have_attribute("data-base", "pmtiles")
    await page.locator("#carte .hv-marker--critical").click()
    await expect(page.locator(".leaflet-popup-content time")).to_have_attribute(
        "datetime", re.compile(".")
    )
    assert await axe(page) == []

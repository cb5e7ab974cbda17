"""The address box with addok as the engine (ADR 0030), in Chromium, in the correction form:
an address found by addok moves the entry; with addok's Redis down, the box says so and the
map still places the entry."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from hypervision.config import Settings
from hypervision.demo.addresses import DEMO_FILE
from hypervision.geo import place_import
from tests.addok_redis import addok_url
from tests.browser.web import SQLITE_ONLY, Web, t
from tests.conftest import make_settings
from tests.factories import ADMIN

pytestmark = SQLITE_ONLY  # the search itself is tested on both engines in tests/geo
__all__ = ["addok_url"]

DOWN_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
PUBLIC = {"level": "NP", "need_to_know": [], "audience": []}
STADE = {"type": "Point", "coordinates": [2.3601, 48.9245]}


@pytest.fixture
def settings(database_url: str, tmp_path: Path, addok_url: str) -> Settings:
    return make_settings(tmp_path, database_url, places_engine="addok", addok_redis=addok_url)


async def correction(web: Web) -> tuple[Page, str]:
    await web.org("PP")
    await web.user("antoine.roux", "PP")
    entry = await web.entry("antoine.roux", title="Véhicule mal garé", label=PUBLIC, location=STADE)
    page = await web.signed_in("antoine.roux", f"/entrees/{entry['id']}/corriger")
    await expect(page.locator("#carte-correction .leaflet-marker-icon")).to_have_count(1)
    return page, str(entry["id"])


async def test_an_address_found_by_addok_moves_the_entry(web: Web) -> None:
    report = await place_import.import_file(
        sessions=web.app.state.system_sessions,
        actor=ADMIN,
        path=DEMO_FILE,
        addok_url=web.app.state.settings.addok_url,
    )
    assert report.imported > 300
    page, entry_id = await correction(web)
    box = page.get_by_role("combobox", name=re.compile(t("Address or venue")))
    await box.click()
    await box.press_sequentially("12 rue jules rimt")  # a typo
    options = page.locator("#adresse-liste").get_by_role("option")
    await expect(options.first).to_have_text("12 Rue Jules Rimet, 93200 Saint-Denis")
    await box.press("ArrowDown")
    await box.press("Enter")
    lat = float(await page.locator("#lat").input_value())
    lon = float(await page.locator("#lon").input_value())
    assert abs(lat - 48.924) < 0.002 and abs(lon - 2.36) < 0.002, (lat, lon)
    await page.click("#enregistrer-correction")
    await expect(page).to_have_url(re.compile(rf"/entrees/{entry_id}#historique$"))
    stored = await web.api("antoine.roux", "GET", f"/entries/{entry_id}")
    assert stored["version"] == 2
    assert stored["location"] == {"type": "Point", "coordinates": [lon, lat]}


@pytest.mark.parametrize("addok_url", [DOWN_URL])
async def test_with_addok_down_the_box_says_so_and_the_map_still_works(web: Web) -> None:
    page, _ = await correction(web)
    box = page.get_by_role("combobox", name=re.compile(t("Address or venue")))
    await box.click()
    await box.press_sequentially("rue du landy")
    await expect(page.locator("[data-place-search] [role=status]")).to_have_text(
        t("Address search is unavailable for now: type coordinates or click on the map.")
    )
    await expect(page.locator("#adresse-liste")).to_be_hidden()
    picker = page.locator("#carte-correction")
    size = await picker.bounding_box()
    assert size is not None
    await picker.click(position={"x": size["width"] / 2 + 80, "y": size["height"] / 2 - 60})
    await expect(page.locator("#lat")).not_to_have_value("48.92450")

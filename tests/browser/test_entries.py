"""Writing an entry in the browser (place, photo) and reading it back; the history's diff."""

from __future__ import annotations

import json
import re
from pathlib import Path

from playwright.async_api import expect

from hypervision.geo.places import find_venue
from tests.browser.web import SQLITE_ONLY, Web, make_photo, t

pytestmark = SQLITE_ONLY  # the journey runs the same form on both engines; here, the rendering

STADE = find_venue("Stade de France")


async def test_located_entry_with_a_photo(web: Web, tmp_path: Path) -> None:
    assert STADE is not None
    photo = make_photo(tmp_path / "tribune-nord.png")
    await web.org("PP", default_category="public_order")
    await web.user("antoine.roux", "PP")
    page = await web.signed_in("antoine.roux", "/main-courante/nouvelle")
    await expect(page.locator("#title")).to_be_focused()
    await expect(page.locator("#category")).to_have_value("public_order")  # the organisation's
    await expect(page.locator("#sev-info")).to_be_checked()
    await expect(page.locator("#aud-all")).to_be_checked()  # the organisation default: everyone
    await expect(page.locator("#lvl-NP")).to_be_checked()

    await page.fill("#title", "Bousculade tribune nord")
    await page.click("label[for=sev-major]")  # DSFR radios: the label is what one clicks
    await expect(page.locator("#sev-major")).to_be_checked()
    await page.fill("#body", "Mouvement de foule **maîtrisé** à l'entrée 12.")
    await page.fill("#place", "Stade de France")
    await page.press("#place", "Tab")  # the venue is picked: the map places it
    await expect(page.locator("#lat")).to_have_value(f"{STADE.lat:.5f}")
    await expect(page.locator("#lon")).to_have_value(f"{STADE.lon:.5f}")
    await expect(page.locator("#carte-saisie .leaflet-marker-icon")).to_have_count(1)
    await page.set_input_files("#files", photo)
    await expect(page.locator("#fichiers-choisis li")).to_have_text(
        re.compile(r"tribune-nord\.png")
    )
    await page.click("#enregistrer")

    await expect(page).to_have_url(re.compile(r"/main-courante\?entree=[0-9a-f-]{36}&cree=1$"))
    entry_id = page.url.split("entree=")[1].split("&")[0]
    first = page.locator("#fil li.hv-card").first
    await expect(first).to_have_id(f"e-{entry_id}")
    await expect(first).to_contain_text("Bousculade tribune nord")
    await expect(first.locator(".fr-icon-map-pin-2-line")).to_have_count(1)  # located
    await expect(page.locator("#detail #entree-titre")).to_have_text("Bousculade tribune nord")

    await page.goto(f"/entrees/{entry_id}")
    await expect(page.locator("h1, h2").filter(has_text="Bousculade tribune nord")).to_have_count(1)
    await expect(page.locator(".hv-body strong")).to_have_text("maîtrisé")  # Markdown rendered
    img = page.locator("img.hv-thumb")
    await expect(img).to_have_count(1)
    await expect(img).to_have_attribute("alt", t("Photo: %(name)s", name="tribune-nord.png"))
    await page.wait_for_function(
        "() => { const i = document.querySelector('img.hv-thumb'); "
        "return i.complete && i.naturalWidth > 0; }"
    )
    size = await img.evaluate("i => [i.naturalWidth, i.naturalHeight]")
    assert size == [96, 64], size
    location = json.loads(await page.locator("#entree").get_attribute("data-location") or "{}")
    assert location == {"type": "Point", "coordinates": [STADE.lon, STADE.lat]}
    shown = page.locator(".hv-map[data-map=show]")
    await expect(shown).to_have_class(re.compile(r"\bleaflet-container\b"))
    await expect(shown.locator(".leaflet-marker-icon")).to_be_visible()

    stored = await web.api("antoine.roux", "GET", f"/entries/{entry_id}")
    assert stored["location"]["coordinates"] == [STADE.lon, STADE.lat]
    assert stored["category"] == "public_order" and stored["severity"] == "major"
    files = await web.client.get(
        f"/api/v1/entries/{entry_id}/attachments", headers=await web.headers("antoine.roux")
    )
    assert [f["content_type"] for f in files.json()] == ["image/png"], files.text


async def test_history_shows_the_words_of_a_correction(web: Web) -> None:
    await web.org("PP")
    await web.user("hugo.faure", "PP")
    created = await web.entry(
        "hugo.faure",
        title="Colis suspect porte de la Chapelle",
        body="Périmètre établi, démineurs prévenus.",
    )
    headers = await web.headers("hugo.faure")
    read = await web.client.get(f"/api/v1/entries/{created['id']}", headers=headers)
    patched = await web.client.patch(
        f"/api/v1/entries/{created['id']}",
        json={
            "title": "Colis suspect porte de la Villette",
            "body": "Périmètre élargi, démineurs sur place.",
        },
        headers={**headers, "If-Match": read.headers["etag"]},
    )
    assert patched.status_code == 200, patched.text

    page = await web.signed_in("hugo.faure", f"/entrees/{created['id']}")
    await expect(page.locator("#entree-titre")).to_have_text("Colis suspect porte de la Villette")
    versions = page.locator("#historique > li")
    await expect(versions).to_have_count(2)
    newest = versions.first
    await expect(newest).to_contain_text(t("Version %(v)s", v=2))
    await expect(newest.locator("dt")).to_have_text([t("Description"), t("Title")])
    body, title = newest.locator("dd").nth(0), newest.locator("dd").nth(1)
    await expect(body.locator("del")).to_have_text(["établi,", "prévenus."])
    await expect(body.locator("ins")).to_have_text(["élargi,", "sur place."])
    await expect(title.locator("del")).to_have_text(["Chapelle"])
    await expect(title.locator("ins")).to_have_text(["Villette"])
    assert (await body.inner_text()).startswith("Périmètre")  # unchanged words kept, plain
    await expect(versions.last).to_contain_text(t("Version %(v)s", v=1))

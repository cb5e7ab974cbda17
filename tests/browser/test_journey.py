"""The new officer's journey, counted: sign in, record a located entry with a photo, find it in
the feed and its page, comment on it, follow its situation — in at most 12 user actions, on a
desktop screen and on a phone."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.async_api import expect

from hypervision.geo.places import find_venue
from hypervision.policy.roles import Role
from tests.browser.web import DESKTOP, PHONE, Counted, Web, make_photo, t

MAX_ACTIONS = 12


# Each engine once and each screen once (the four pairs repeated the same browser journey):
# on PostgreSQL at a desktop size, on SQLite on a phone.
@pytest.mark.parametrize(
    ("database_url", "viewport"),
    [("postgresql", DESKTOP), ("sqlite", PHONE)],
    ids=["postgresql-desktop", "sqlite-phone"],
    indirect=["database_url"],
)
async def test_new_officer_journey_in_at_most_12_actions(
    web: Web, tmp_path: Path, viewport: dict[str, int]
) -> None:
    venue = find_venue("Stade de France")
    assert venue is not None
    photo = make_photo(tmp_path / "acces-porte-h.jpg")
    await web.org("PP-DOPC", default_category="public_order")
    await web.user("nadia.benali", "PP-DOPC", roles=(Role.WATCH_OFFICER,))
    # A first sign-in: the guided tour opens on the feed, but it is not modal and does not
    # take the focus, so the officer can start at once (it waits for the next visit).
    await web.user("emilie.blanc", "PP-DOPC", clearance="NP", tour_done=False)
    situation = await web.situation("nadia.benali", title="Cérémonie d'ouverture")

    page = await web.page(viewport=viewport)
    await page.goto("/connexion")
    user = Counted(page)
    await user.fill("#username", "emilie.blanc")
    await user.fill("#password", "correct horse battery staple")
    await user.press("#password", "Enter")
    await page.wait_for_url(f"{web.base}/main-courante")
    await expect(page.locator("dialog#visite")).to_have_attribute("open", "")

    await user.key("n")
    await page.wait_for_url(f"{web.base}/main-courante/nouvelle")
    await expect(page.locator("#title")).to_be_focused()
    await expect(page.locator("#category")).to_have_value("public_order")  # nothing to choose
    await user.fill("#title", "Files d'attente saturées porte H")
    await user.fill("#place", "Stade de France")
    await user.set_input_files("#files", photo)
    await user.select_option("#situation", situation["id"])
    await user.click("#enregistrer")

    await page.wait_for_url(re.compile(r"/main-courante\?entree=[0-9a-f-]{36}&cree=1$"))
    entry_id = page.url.split("entree=")[1].split("&")[0]
    await expect(page.locator("#fil li.hv-card").first).to_have_id(f"e-{entry_id}")
    await expect(page.locator("#fil li.hv-card").first).to_have_class(
        re.compile("hv-card--selected")
    )
    await expect(page.locator("#detail #entree")).to_have_attribute("data-entry", entry_id)
    await expect(page.locator("#detail #entree-titre")).to_have_text(
        "Files d'attente saturées porte H"
    )
    await expect(page.locator("#detail img.hv-thumb")).to_be_visible()
    await expect(page.locator("#detail .hv-map.leaflet-container")).to_be_visible()

    await user.fill("#commentaire", "Renfort de deux stadiers demandé.")
    await user.press("#commentaire", "Control+Enter")
    comment = page.locator("#liste-commentaires li", has_text="Renfort de deux stadiers demandé.")
    await expect(comment).to_be_visible()
    await user.click("#suivre-situation")
    followed = page.locator("#suivre-situation")
    await expect(followed).to_have_attribute("aria-pressed", "true")
    await expect(followed).to_have_text(t("Following the situation"))
    clipped = "b => b.scrollWidth > b.clientWidth || b.getBoundingClientRect().width < 80"
    assert not await followed.evaluate(clipped), "the button shows its icon only, not its label"

    print(f"new officer journey: {user.count} actions: {user.actions}")  # noqa: T201
    assert user.count <= MAX_ACTIONS, user.actions

    stored = await web.api("emilie.blanc", "GET", f"/entries/{entry_id}")
    assert stored["location"] == {"type": "Point", "coordinates": [venue.lon, venue.lat]}
    assert stored["category"] == "public_order"
    assert stored["situation_id"] == situation["id"]
    files = await web.client.get(
        f"/api/v1/entries/{entry_id}/attachments", headers=await web.headers("emilie.blanc")
    )
    assert [f["filename"] for f in files.json()] == ["acces-porte-h.jpg"], files.text
    comments = await web.client.get(
        f"/api/v1/entries/{entry_id}/comments", headers=await web.headers("emilie.blanc")
    )
    assert [c["body"] for c in comments.json()] == ["Renfort de deux stadiers demandé."]
    await page.goto("/suivis")
    await expect(page.locator(".hv-follows li")).to_contain_text(["Cérémonie d'ouverture"])

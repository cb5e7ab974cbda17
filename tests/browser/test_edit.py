"""Correcting and closing an entry, drafting a synthesis, and drafts that survive a reload, in
Chromium: the journeys an officer and a watch officer go through, and the defects they had
(the synthesis button that dropped the typed analysis)."""

from __future__ import annotations

import re
import uuid
from typing import Any

from playwright.async_api import expect

from hypervision.policy.roles import Role
from hypervision.synthesis.models import Synthesis
from tests.browser.test_accessibility import axe, report
from tests.browser.web import AXE, SQLITE_ONLY, Web, screenshot, t, unavailable
from tests.factories import tx

pytestmark = SQLITE_ONLY  # the server side runs on both engines in tests/web

PUBLIC = {"level": "NP", "audience": []}


async def test_correct_an_entry_and_close_it(web: Web) -> None:
    await web.org("PP")
    await web.user("antoine.roux", "PP")
    entry = await web.entry(
        "antoine.roux", title="Colis suspect gare du Nord", body="Périmètre établi.", label=PUBLIC
    )
    page = await web.signed_in("antoine.roux", f"/entrees/{entry['id']}")
    await page.click("#corriger")
    await expect(page).to_have_url(re.compile(rf"/entrees/{entry['id']}/corriger$"))
    await expect(page.locator("#c-body")).to_have_value("Périmètre établi.")
    await page.fill("#c-title", "Colis suspect levé gare du Nord")
    await page.fill("#c-body", "Périmètre levé, fausse alerte.")
    await page.click("#enregistrer-correction")

    await expect(page).to_have_url(re.compile(rf"/entrees/{entry['id']}#historique$"))
    await expect(page.locator("#entree-titre")).to_have_text("Colis suspect levé gare du Nord")
    await expect(page.locator("#entree .hv-body").first).to_have_text(
        "Périmètre levé, fausse alerte."
    )
    newest = page.locator("#historique > li").first
    await expect(newest).to_contain_text(t("Version %(v)s", v=2))
    await expect(newest.locator("del").first).to_have_text("établi.")
    await expect(newest.locator("ins").first).to_have_text("levé, fausse alerte.")

    await page.select_option("#statut-choix", "closed")
    await page.click("#changer-statut")
    await expect(page.locator("#entree header")).to_contain_text(t("Closed"))
    newest = page.locator("#historique > li").first
    await expect(newest).to_contain_text(t("Version %(v)s", v=3))
    await expect(newest.locator("ins")).to_have_text(t("Closed"))
    await expect(page.locator("#statut-choix")).to_have_value("closed")


async def test_a_reader_of_another_organisation_sees_no_correction_controls(web: Web) -> None:
    await web.org("PP")
    await web.org("SAMU")
    await web.user("antoine.roux", "PP")
    await web.user("lea.petit", "SAMU")
    entry = await web.entry("antoine.roux", title="Malaise en tribune", label=PUBLIC)
    page = await web.signed_in("lea.petit", f"/entrees/{entry['id']}")
    await expect(page.locator("#entree-titre")).to_have_text("Malaise en tribune")
    await expect(page.locator("#corriger")).to_have_count(0)
    await expect(page.locator("#changer-statut")).to_have_count(0)


async def test_a_comment_draft_survives_a_reload_and_goes_once_sent(web: Web) -> None:
    await web.org("PP")
    await web.user("antoine.roux", "PP")
    entry = await web.entry("antoine.roux", title="Fuite de gaz rue Lepic", label=PUBLIC)
    page = await web.signed_in("antoine.roux", f"/entrees/{entry['id']}")
    await page.fill("#commentaire", "GRDF sur place, rue fermée jusqu'à 20 h.")
    await page.wait_for_timeout(500)  # past the short wait before the draft is written
    await page.reload()
    await expect(page.locator("#commentaire")).to_have_value(
        "GRDF sur place, rue fermée jusqu'à 20 h."
    )
    await expect(page.locator("#commenter .hv-draft-restored")).to_contain_text(
        "Brouillon restauré"
    )
    await page.click("#commenter button[type=submit]")
    await expect(page.locator("#liste-commentaires")).to_contain_text("GRDF sur place")
    await expect(page.locator("#commentaire")).to_have_value("")
    await page.reload()
    await expect(page.locator("#commentaire")).to_have_value("")
    await expect(page.locator(".hv-draft-restored")).to_have_count(0)


async def test_a_correction_draft_survives_a_reload(web: Web) -> None:
    await web.org("PP")
    await web.user("antoine.roux", "PP")
    entry = await web.entry("antoine.roux", title="Panne d'éclairage", body="Secteur nord.")
    page = await web.signed_in("antoine.roux", f"/entrees/{entry['id']}/corriger")
    await page.fill("#c-body", "Secteur nord et est, rétablissement prévu à 22 h.")
    await page.wait_for_timeout(500)
    await page.reload()
    await expect(page.locator("#c-body")).to_have_value(
        "Secteur nord et est, rétablissement prévu à 22 h."
    )
    await expect(page.locator("#correction .hv-draft-restored")).to_be_visible()
    await page.click("#correction .hv-draft-restored button")  # discard: back to what is saved
    await expect(page.locator("#c-body")).to_have_value("Secteur nord.")


async def test_the_new_entry_draft_survives_a_reload(web: Web) -> None:
    await web.org("PP")
    await web.user("antoine.roux", "PP")
    page = await web.signed_in("antoine.roux", "/main-courante/nouvelle")
    await page.fill("#title", "Attroupement devant la mairie")
    await page.fill("#body", "Une centaine de personnes, calme.")
    await page.reload()
    await expect(page.locator("#title")).to_have_value("Attroupement devant la mairie")
    await expect(page.locator("#body")).to_have_value("Une centaine de personnes, calme.")
    await expect(page.locator("#brouillon-info")).to_be_visible()


async def test_typed_analysis_is_what_is_submitted_and_is_saved_meanwhile(web: Web) -> None:
    await web.org("CNCS")
    await web.org("PP")
    await web.user("claire", "CNCS", roles=[Role.WATCH_OFFICER])
    await web.user("antoine.roux", "PP")
    await web.entry("antoine.roux", title="Rixe place du marché", label=PUBLIC)
    synthesis = await web.api(
        "claire", "POST", "/syntheses", json={"title": "Point de 18 h", "scope": {"hours": 24}}
    )
    page = await web.signed_in("claire", f"/syntheses/{synthesis['id']}")
    analysis = "## Situation générale\n\nCalme revenu place du marché après la rixe."
    await page.fill("#r-narrative", analysis)
    await expect(page.locator("#brouillon-etat")).to_have_text(
        re.compile(r"^Brouillon enregistré à \d\d:\d\d$")
    )
    async with tx(web.app) as session:
        saved = await session.get(Synthesis, uuid.UUID(synthesis["id"]))
        assert saved is not None and saved.narrative == analysis  # saved on the server

    await page.fill("#r-narrative", analysis + "\n\nProchain point à 20 h.")
    await page.click("#etape-submit")  # at once: before the background save
    await expect(page.locator("#statut")).to_have_text(t("Submitted"))
    await expect(page.locator(".hv-body")).to_contain_text("Prochain point à 20 h.")
    async with tx(web.app) as session:
        sent = await session.get(Synthesis, uuid.UUID(synthesis["id"]))
        assert sent is not None and sent.status == "submitted"
        assert sent.narrative == analysis + "\n\nProchain point à 20 h."


async def test_correction_pages_have_no_accessibility_violation(web: Web) -> None:
    if not AXE.exists():
        unavailable(f"{AXE} is missing: run `npm ci --ignore-scripts` at the repository root")
    await web.org("PP")
    await web.user("antoine.roux", "PP")
    entry = await web.entry("antoine.roux", title="Panne d'éclairage", body="Secteur nord.")
    page = await web.signed_in("antoine.roux", f"/entrees/{entry['id']}", bypass_csp=True)
    await page.fill("#commentaire", "Brouillon de commentaire")
    await page.goto(f"/entrees/{entry['id']}/corriger")
    await page.fill("#c-body", "Secteur nord et est.")  # kept even when leaving at once
    found: dict[str, list[dict[str, Any]]] = {}
    for width, height, size in ((1280, 900, "bureau"), (390, 844, "telephone")):
        await page.set_viewport_size({"width": width, "height": height})
        for name, path, drafts in (("entree", "", 1), ("correction", "/corriger", 2)):
            await page.goto(f"/entrees/{entry['id']}{path}")
            await expect(page.locator(".hv-draft-restored")).to_have_count(drafts)  # notices too
            found[f"{name}-{size}"] = await axe(page)
            await screenshot(page, f"edit-{name}-{size}")
    assert not any(found.values()), report(found)


async def test_an_analysis_not_saved_offline_is_given_back_after_a_reload(web: Web) -> None:
    await web.org("CNCS")
    await web.user("claire", "CNCS", roles=[Role.WATCH_OFFICER])
    synthesis = await web.api(
        "claire", "POST", "/syntheses", json={"title": "Point de 22 h", "scope": {"hours": 24}}
    )
    page = await web.signed_in("claire", f"/syntheses/{synthesis['id']}")
    await page.route("**/brouillon", lambda route: route.abort())  # the network is gone
    typed = "Analyse tapée pendant la coupure du réseau."
    await page.fill("#r-narrative", typed)
    await expect(page.locator("#brouillon-etat")).to_contain_text("Brouillon non enregistré")
    await page.unroute("**/brouillon")
    await page.reload()
    await expect(page.locator("#r-narrative")).to_have_value(typed)
    await expect(page.locator("#redaction .hv-draft-restored")).to_be_visible()
    await page.click("#enregistrer-synthese")
    await expect(page.locator("#r-narrative")).to_have_value(typed)
    await expect(page.locator(".hv-draft-restored")).to_have_count(0)  # saved: no copy left
    async with tx(web.app) as session:
        saved = await session.get(Synthesis, uuid.UUID(synthesis["id"]))
        assert saved is not None and saved.narrative == typed

"""The live feed in the browser: a DR entry released to every organisation slides into a
cleared reader's feed with its marking, and never reaches an uncleared one."""

from __future__ import annotations

import asyncio
import re

from playwright.async_api import Page, Route, expect

from tests.browser.web import SQLITE_ONLY, Web, live_stream_open, t

MARKING = "DIFFUSION RESTREINTE"
STREAM = re.compile(r"/api/v1/stream\?")
WAIT_AFTER_DELIVERY = 2.0  # seconds the uncleared feed is still watched once the other got it


async def reader(web: Web, username: str) -> Page:
    page = await web.signed_in(username)
    await expect(page.locator("#fil .hv-empty")).to_be_visible()
    await expect(page.locator("#marquage-haut")).to_be_hidden()
    await live_stream_open(page)
    await page.evaluate("() => { window.hvNotReloaded = true; }")
    return page


async def not_reloaded(page: Page) -> bool:
    return bool(await page.evaluate("() => window.hvNotReloaded === true"))


async def test_dr_entry_reaches_the_cleared_reader_only(web: Web) -> None:
    await web.org("PP")
    await web.org("SAMU")
    await web.user("antoine.roux", "PP", clearance="DR")
    await web.user("karim.haddad", "SAMU", clearance="DR")
    await web.user("laura.dupuis", "SAMU", clearance="NP")
    cleared, uncleared, author = await asyncio.gather(  # three officers at their desks
        reader(web, "karim.haddad"),
        reader(web, "laura.dupuis"),
        web.signed_in("antoine.roux", "/main-courante/nouvelle"),
    )
    await author.fill("#title", "Renseignement : rassemblement non déclaré")
    await author.select_option("#category", "security")
    await author.click("label[for=aud-all]")
    await author.click("label[for=lvl-DR]")
    await expect(author.locator("#aud-all")).to_be_checked()
    await expect(author.locator("#lvl-DR")).to_be_checked()
    await author.click("#enregistrer")
    await expect(author).to_have_url(re.compile(r"/main-courante\?entree=[0-9a-f-]{36}&cree=1$"))
    entry_id = author.url.split("entree=")[1].split("&")[0]

    card = cleared.locator(f"#fil li#e-{entry_id}")
    await expect(card).to_be_visible()
    await expect(card).to_contain_text("Renseignement : rassemblement non déclaré")
    await expect(card).to_have_class(re.compile(r"\bhv-card--fresh\b"))
    await expect(card.locator(".hv-level")).to_have_text("DR")
    await expect(cleared.locator("#marquage-haut")).to_have_text(MARKING)
    await expect(cleared.locator("#marquage-bas")).to_have_text(MARKING)
    await expect(cleared.locator("#fil .hv-empty")).to_have_count(0)
    assert await not_reloaded(cleared), "the cleared reader's page was reloaded"

    await asyncio.sleep(WAIT_AFTER_DELIVERY)
    await expect(uncleared.locator("#fil li.hv-card")).to_have_count(0)
    await expect(uncleared.locator("#marquage-haut")).to_be_hidden()
    assert await not_reloaded(uncleared)

    # Its stream works: an NP entry for every organisation does reach it.
    public = await web.entry(
        "antoine.roux",
        title="Point de situation ouvert à tous",
        label={"level": "NP", "audience": []},
    )
    await expect(uncleared.locator(f"#fil li#e-{public['id']}")).to_be_visible()
    await expect(cleared.locator(f"#fil li#e-{public['id']}")).to_be_visible()
    await expect(uncleared.locator("#fil li.hv-card")).to_have_count(1)
    await expect(uncleared.locator("#marquage-haut")).to_be_hidden()
    await expect(uncleared.locator("#annonce")).to_have_text("Point de situation ouvert à tous")
    await expect(uncleared.locator("body")).to_have_attribute("data-live", "open")

    # A reader busy further down the feed is not disturbed: new entries wait behind a counter.
    await cleared.keyboard.press("j")
    await cleared.keyboard.press("j")
    await expect(cleared.locator(f"#e-{entry_id} .hv-card__link")).to_be_focused()
    later = await web.entry(
        "antoine.roux", title="Fin de l'alerte", label={"level": "NP", "audience": []}
    )
    await expect(cleared.locator("#nouveautes")).to_be_visible()
    await expect(cleared.locator("#nouveautes-nombre")).to_have_text("1")
    await expect(cleared.locator("#fil li.hv-card")).to_have_count(2)
    await expect(cleared.locator(f"#e-{entry_id} .hv-card__link")).to_be_focused()
    await cleared.click("#nouveautes button")
    await expect(cleared.locator("#nouveautes")).to_be_hidden()
    await expect(cleared.locator("#fil li.hv-card").first).to_have_id(f"e-{later['id']}")
    await expect(cleared.locator(f"#e-{later['id']} .hv-card__link")).to_be_focused()
    assert await not_reloaded(cleared)

    # And the DR entry stays out of reach when asked for directly.
    response = await uncleared.goto(f"/entrees/{entry_id}")
    assert response is not None and response.status == 404
    await expect(uncleared.locator("h1")).to_have_text(t("Not found"))


@SQLITE_ONLY  # the refusals are the browser's (routed), whatever the engine behind
async def test_feed_reconnects_after_503s_and_says_so(web: Web) -> None:
    """A stream answered 503 (a replica restarting) closes an EventSource for good: the page
    reopens it itself, with backoff, tells the officer, and the feed is live again (it used to
    freeze until a manual reload)."""
    await web.org("PP")
    await web.user("antoine.roux", "PP", clearance="DR")
    page = await web.signed_in("antoine.roux", "/aide")
    refused: list[str] = []

    async def stream(route: Route) -> None:
        if len(refused) < 2:  # the first two opens are refused, as by a restarting replica
            refused.append(route.request.url)
            await route.fulfill(status=503, body='{"detail": "unavailable"}')
        else:
            await route.continue_()

    await page.route(STREAM, stream)
    await page.goto("/main-courante")
    indicator = page.locator("#etat-direct")
    await expect(indicator).to_contain_text(
        re.compile(r"Connexion perdue — nouvel essai dans \d+ s")
    )
    await expect(indicator).to_have_text("En direct", timeout=40_000)
    await live_stream_open(page)
    assert len(refused) == 2
    created = await web.entry("antoine.roux", title="Après la coupure")
    await expect(page.locator(f"#fil li#e-{created['id']}")).to_be_visible()
    # the browser logs each refused stream; those are the outage this test made
    web.errors[:] = [e for e in web.errors if "EventSource's response has a status of 503" not in e]

"""Live badges in the browser: the "Suivis" badge counts a comment on a followed entry as it
arrives (the live stream), the inbox badge counts a synthesis sent to an authority within a
minute (a background poll: syntheses are not on the stream); neither page is reloaded."""

from __future__ import annotations

import re

from playwright.async_api import Page, expect

from hypervision.policy.roles import Role
from tests.browser.web import SQLITE_ONLY, Web, live_stream_open
from tests.web.test_homes import NARRATIVE

PUBLIC = {"level": "NP", "need_to_know": [], "audience": []}


async def mark_not_reloaded(page: Page) -> None:
    await page.evaluate("() => { window.hvNotReloaded = true; }")


async def not_reloaded(page: Page) -> bool:
    return bool(await page.evaluate("() => window.hvNotReloaded === true"))


async def test_the_follows_badge_counts_a_comment_on_a_followed_entry_live(web: Web) -> None:
    await web.org("PREF")
    await web.org("SAMU")
    await web.user("alice", "PREF")
    await web.user("bob", "SAMU")
    entry = await web.entry("alice", title="Colis suspect gare du Nord", label=PUBLIC)
    page = await web.signed_in("bob", f"/entrees/{entry['id']}")
    await page.click("#suivre-entree")
    await expect(page.locator("#suivre-entree")).to_have_attribute("aria-pressed", "true")
    await expect(page.locator("#suivre-entree")).to_have_text("Ne plus suivre")
    await page.goto("/aide")
    await live_stream_open(page)
    await expect(page.locator("#badge")).to_be_hidden()
    await mark_not_reloaded(page)

    await web.api("alice", "POST", f"/entries/{entry['id']}/comments", json={"body": "Levée."})
    await expect(page.locator("#badge")).to_be_visible()
    await expect(page.locator("#badge")).to_have_text(re.compile(r"1$"))
    assert await not_reloaded(page)

    await page.goto("/suivis")  # seen
    await page.goto("/aide")
    await live_stream_open(page)
    await expect(page.locator("#badge")).to_be_hidden()
    await mark_not_reloaded(page)
    current = await web.client.get(
        f"/api/v1/entries/{entry['id']}", headers=await web.headers("alice")
    )
    moved = await web.client.patch(
        f"/api/v1/entries/{entry['id']}",
        json={"status": "in_progress"},
        headers={**await web.headers("alice"), "If-Match": current.headers["etag"]},
    )
    assert moved.status_code == 200, moved.text
    await expect(page.locator("#badge")).to_have_text(re.compile(r"1$"))  # a new version
    assert await not_reloaded(page)


@SQLITE_ONLY
async def test_the_inbox_badge_counts_a_synthesis_sent_without_reload(web: Web) -> None:
    await web.org("PREF")
    await web.user("marc", "PREF", roles=[Role.WATCH_OFFICER])
    await web.user("claire", "PREF", roles=[Role.WATCH_OFFICER])
    await web.user("helene", "PREF", roles=[Role.AUTHORITY])
    await web.entry("marc", title="Affluence", label=PUBLIC)
    page = await web.signed_in("helene", "/boite")
    await page.clock.install()  # the page's timers, under the test's hand
    await page.goto("/boite")
    await expect(page.locator("#badge-boite")).to_have_count(0)
    await mark_not_reloaded(page)

    sid = (await web.api("marc", "POST", "/syntheses", json={"title": "Point de 18 h"}))["id"]
    await web.api("marc", "PATCH", f"/syntheses/{sid}", json={"narrative": NARRATIVE})
    await web.api("marc", "POST", f"/syntheses/{sid}/submit")
    await web.api("claire", "POST", f"/syntheses/{sid}/validate")
    await web.api("claire", "POST", f"/syntheses/{sid}/send", json={"users": ["helene"]})
    await page.clock.run_for(61_000)  # a minute later
    await expect(page.locator("#badge-boite")).to_have_text(re.compile(r"1$"))
    await expect(page.locator("#lien-boite")).to_have_attribute("href", "/boite")
    assert await not_reloaded(page)

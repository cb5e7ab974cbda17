"""The map's replay slider (replay.js): its two ends labelled, the chosen time said as it moves
(in French, also as aria-valuetext), a play/pause button, all with the keyboard; the map shows
the entries as they were at the chosen time."""

from __future__ import annotations

import re

from playwright.async_api import expect

from tests.browser.web import SQLITE_ONLY, Web

pytestmark = SQLITE_ONLY  # markup and script; the map query is tested on both engines

NEAR_CONCORDE = {"type": "Point", "coordinates": [2.3212, 48.8656]}
FRENCH_DAY = re.compile(r"(lundi|mardi|mercredi|jeudi|vendredi|samedi|dimanche) \d+ \w+")


async def test_replay_slider_labels_keyboard_and_play(web: Web) -> None:
    await web.org("PP")
    await web.user("antoine.roux", "PP")
    await web.entry("antoine.roux", title="Colis suspect Concorde", location=NEAR_CONCORDE)
    page = await web.signed_in("antoine.roux", "/carte")
    carte, slider = page.locator("#carte"), page.locator("#rejouer")
    said, play = page.locator("#rejouer-texte"), page.locator("#rejouer-lecture")
    await expect(carte).to_have_attribute("data-total", "1")

    # Both ends labelled: the start as a French day and time, the end "maintenant".
    start = re.compile(r"^(lun|mar|mer|jeu|ven|sam|dim)\.? \d+ \d\d:\d\d$")
    await expect(page.locator("#rejouer-debut")).to_have_text(start)
    await expect(page.locator("#rejouer-fin")).to_have_text("maintenant")
    await expect(slider).to_have_attribute("aria-valuetext", "maintenant")
    await expect(said).to_have_text("maintenant")

    # With the keyboard: one hour back, said in words; the map shows that time (no entry yet).
    await slider.focus()
    await page.keyboard.press("ArrowLeft")
    await expect(slider).to_have_attribute("aria-valuetext", re.compile(r"\(il y a 1 h\)$"))
    assert FRENCH_DAY.search(await slider.get_attribute("aria-valuetext") or "")
    await expect(said).to_have_text(re.compile(r"il y a 1 h"))
    await expect(carte).to_have_attribute("data-total", "0")

    # Play advances hour by hour up to now, then stops by itself; the entry is back.
    await page.keyboard.press("ArrowLeft")
    await expect(slider).to_have_value("70")
    await expect(play).to_be_visible()
    await expect(play).to_have_text("Lecture")
    await play.focus()
    await page.keyboard.press("Enter")
    await expect(play).to_have_text("Pause")
    await expect(slider).to_have_value("71")
    await expect(slider).to_have_value("72")
    await expect(play).to_have_text("Lecture")
    await expect(slider).to_have_attribute("aria-valuetext", "maintenant")
    await expect(carte).to_have_attribute("data-total", "1")

    # From now, play starts again from the beginning; pause stops it where it is.
    await play.click()
    await expect(play).to_have_text("Pause")
    await expect(slider).to_have_value(re.compile(r"^[0-9]$"))
    await play.click()
    await expect(play).to_have_text("Lecture")
    stopped = await slider.input_value()
    await page.wait_for_timeout(1600)
    await expect(slider).to_have_value(stopped)
    assert int(stopped) < 72
    await expect(slider).to_have_attribute("aria-valuetext", re.compile(r"il y a \d+ h"))
    assert not web.errors, web.errors

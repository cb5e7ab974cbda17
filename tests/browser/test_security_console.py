"""The security console in the browser (issue 21, docs/adr/0039, 0040, 0046): a security
officer watches the trail live, sees an officer's read arrive, pauses and resumes without
losing any, sees the officer's burst of reads raise an alert (a notice pops up on the page),
opens the officer's activity, revokes their sessions, and the officer's live stream closes at
once (their page goes back to the sign-in page); then acknowledges the alert with a note."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI
from playwright.async_api import expect

from hypervision.policy.roles import Role
from tests.alerts.helpers import set_rule
from tests.browser.web import Web, live_stream_open


@pytest.fixture
async def sequencing(app: FastAPI) -> AsyncIterator[None]:
    """The server's audit sequencer, as in production (serve() runs without lifespan): the
    console's records arrive as it chains them."""
    app.state.sequencer.start()
    yield
    await app.state.sequencer.stop()


async def test_security_officer_watches_and_revokes(web: Web, sequencing: None) -> None:
    await web.org("PP")
    await web.org("SECU")
    karim = await web.user("karim.haddad", "PP", clearance="DR")
    await web.user("sophie.martin", "SECU", roles=(Role.SECURITY_OFFICER,), clearance="NP")
    entry = await web.entry("karim.haddad", title="Colis suspect gare du Nord")

    officer = await web.signed_in("karim.haddad")
    await live_stream_open(officer)
    console = await web.signed_in("sophie.martin", "/securite")
    await expect(console.locator("#lien-securite")).to_have_attribute("aria-current", "page")
    await expect(console.locator("#etat-journal")).to_have_text("En direct")

    rows = console.locator("#journal-direct tr")
    reads = console.locator("#journal-direct tr", has_text="entry.read")
    await expect(reads).to_have_count(0)
    await web.api("karim.haddad", "GET", f"/entries/{entry['id']}")
    await expect(reads).to_have_count(1)  # live: the read appears without a reload
    await expect(reads.first).to_contain_text("karim.haddad")
    await expect(reads.first.locator("td").nth(2)).to_have_text("PP")  # the organisation
    await expect(reads.first).to_contain_text(entry["id"][:8])
    await expect(console.locator("#journal-direct")).not_to_contain_text(
        "Colis suspect gare du Nord"  # ids and labels, never content
    )

    # Paused: what arrives waits; resumed: it is all shown, nothing lost.
    await console.click("#pause-journal")
    await expect(console.locator("#pause-journal")).to_have_attribute("aria-pressed", "true")
    await web.api("karim.haddad", "GET", f"/entries/{entry['id']}")
    await web.api("karim.haddad", "GET", f"/entries/{entry['id']}")
    await expect(console.locator("#etat-journal")).to_contain_text(re.compile(r"En pause : [1-9]"))
    await expect(reads).to_have_count(1)
    await console.click("#pause-journal")
    await expect(reads).to_have_count(3)
    seqs = [int(s) for s in await rows.evaluate_all("rs => rs.map(r => r.dataset.seq)")]
    assert seqs == sorted(seqs, reverse=True) and len(seqs) == len(set(seqs))

    # A burst of reads of distinct entries raises the bulk-reads alert, live: the officer
    # keeps the console open and the alerts badge turns up in the menu.
    security = await web.headers("sophie.martin")
    for _ in range(50):  # the sequencer's first pass ships the default rules
        found = await web.client.get(
            "/api/v1/security/alert-rules", params={"kind": "bulk_reads"}, headers=security
        )
        if found.json()["items"]:
            break
        await asyncio.sleep(0.1)
    await set_rule(web.client, security, "bulk_reads", threshold=3, window_minutes=10)
    others = [await web.entry("karim.haddad", title=f"Point de situation {i}") for i in range(4)]
    for other in others:
        await web.api("karim.haddad", "GET", f"/entries/{other['id']}")
    bursts = console.locator("#journal-direct tr", has_text=others[-1]["id"][:8])
    await expect(bursts.first).to_be_visible()  # the burst, live in the trail
    # The alert pops up on the page (a DSFR notice), and the badge turns up, without a reload.
    toast = console.locator("#alertes-direct .hv-toast", has_text="Lectures en masse")
    await expect(toast).to_be_visible()
    await expect(toast).to_have_attribute("role", "alert")
    await expect(toast).to_contain_text("Alerte de sécurité — Élevée")
    await expect(toast).not_to_contain_text("Point de situation")  # never content
    await expect(console.locator("#badge-alertes")).to_be_visible()
    await toast.locator(".fr-btn--close").click()
    await expect(toast).to_have_count(0)
    await console.reload()
    await expect(console.locator("#badge-alertes")).to_be_visible()
    await console.click("#lien-alertes")
    alert_row = console.locator("table tr", has_text="Lectures en masse")
    await expect(alert_row).to_have_count(1)
    await expect(alert_row).to_contain_text("karim.haddad")
    await expect(alert_row).to_contain_text("Nouvelle")
    alert_page = alert_row.locator("a").first
    alert_url = f"{web.base}{await alert_page.get_attribute('href')}"
    await console.go_back()

    # The person's activity, then every session and token revoked: their stream closes.
    await reads.first.locator("a", has_text="karim.haddad").click()
    await expect(console).to_have_url(re.compile(rf"/securite/personnes/{karim.id}$"))
    await expect(console.locator("#activite")).to_contain_text("entry.read")
    await expect(console.locator("#sessions")).to_contain_text("ouverte")
    await console.click("#revoquer-tout")
    await expect(console.locator(".fr-alert--success")).to_contain_text("Révoqué")
    await expect(officer).to_have_url(re.compile(r"/connexion\?expiree=1"))

    # The alert, acknowledged with a note.
    await console.goto(alert_url)
    await expect(console.locator("main")).not_to_contain_text("Point de situation")
    await console.fill("#note", "Sessions révoquées, agent contacté.")
    await console.click("button[value=acknowledged]")
    await expect(console.locator("main")).to_contain_text("Sessions révoquées, agent contacté.")
    await expect(console.locator("dl.hv-facts")).to_contain_text("Prise en compte")

"""The security console in the browser (issue 21, docs/adr/0039): a security officer watches
the trail live, sees an officer's read arrive, pauses and resumes without losing any, opens
the officer's activity, revokes their sessions, and the officer's live stream closes at once
(their page goes back to the sign-in page)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI
from playwright.async_api import expect

from hypervision.policy.roles import Role
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

    # The person's activity, then every session and token revoked: their stream closes.
    await reads.first.locator("a", has_text="karim.haddad").click()
    await expect(console).to_have_url(re.compile(rf"/securite/personnes/{karim.id}$"))
    await expect(console.locator("#activite")).to_contain_text("entry.read")
    await expect(console.locator("#sessions")).to_contain_text("ouverte")
    await console.click("#revoquer-tout")
    await expect(console.locator(".fr-alert--success")).to_contain_text("Révoqué")
    await expect(officer).to_have_url(re.compile(r"/connexion\?expiree=1"))

"""Accessibility of every page an officer, a watch officer, an authority and an administrator
can reach, signed out or in, at a desktop size (1280×800) and on a phone (390×844): axe-core
finds no violation, whatever its impact. Each page is also saved as a full-page screenshot
for review (test-artifacts/screenshots/<page>-<desktop|phone>.png, not committed).

axe is injected as a script: these pages are opened in a context that bypasses the
Content-Security-Policy (it forbids any script the application does not serve itself)."""

from __future__ import annotations

import asyncio
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyotp
import pytest
from playwright.async_api import Page, expect

from hypervision.follows.models import Follow
from hypervision.policy.roles import Role
from tests.browser.web import AXE, PHONE, SQLITE_ONLY, Web, make_photo, screenshot, unavailable
from tests.factories import tx

pytestmark = SQLITE_ONLY  # markup: the same HTML on both engines

VIEWPORTS = {"desktop": {"width": 1280, "height": 800}, "phone": PHONE}
PUBLIC = {"level": "NP", "audience": []}
SQUARE = {
    "type": "Polygon",
    "coordinates": [[[2.35, 48.89], [2.37, 48.89], [2.37, 48.90], [2.35, 48.90], [2.35, 48.89]]],
}
DAY = {"scope": {"hours": 24}}
NARRATIVE = "## Situation générale\n\nAffluence **forte** au Stade de France, sans incident."


# Every rule axe runs by default, plus WCAG 2.2's target size (24 × 24 px, or spaced enough),
# which axe leaves off by default and Lighthouse's accessibility score counts.
RUN_AXE = """() => axe.run(document, {
  resultTypes: ['violations'],
  rules: { 'target-size': { enabled: true } },
})"""


# Finite CSS transitions and animations (a panel unfolding, a popup fading in) end first: axe
# measures sizes, overlaps and contrast as they are at that instant.
SETTLE = """() => Promise.race([
  Promise.all(document.getAnimations()
    .filter((a) => a.effect?.getComputedTiming().endTime !== Infinity)
    .map((a) => a.finished.catch(() => null))),
  new Promise((resolve) => setTimeout(resolve, 3000)),
])"""


async def axe(page: Page) -> list[dict[str, Any]]:
    """The page's axe violations: rule, impact, and the nodes' selectors."""
    await page.add_script_tag(path=AXE)
    await page.evaluate(SETTLE)
    results = await page.evaluate(RUN_AXE)
    return [
        {
            "id": v["id"],
            "impact": v["impact"],
            "help": v["help"],
            "targets": [n["target"] for n in v["nodes"]],
        }
        for v in results["violations"]
    ]


def report(found: dict[str, list[dict[str, Any]]]) -> str:
    lines = []
    for name, violations in found.items():
        for v in violations:
            lines.append(f"{name}: {v['id']} ({v['impact']}) {v['help']} — {v['targets'][:5]}")
    return "\n".join(lines)


@dataclass(frozen=True)
class Shown:
    """A page to check: its name (the screenshot's), its path, what shows it is ready, and
    the HTTP status it answers with."""

    name: str
    path: str
    ready: str
    status: int = 200


async def world(web: Web, tmp_path: Path) -> dict[str, str]:
    """Everyone's data, through the real services and the API; the identifiers the pages need."""
    await web.org("PP", default_category="public_order")
    await web.org("SAMU")
    await web.org("CNCS", mfa=True)
    sophie = await web.user("sophie.martin", "PP", roles=(Role.WATCH_OFFICER,))
    await web.user("julien.petit", "PP", roles=(Role.WATCH_OFFICER,))
    mehdi = await web.user("mehdi.kaci", "SAMU")
    await web.user("helene.prefete", "PP", roles=(Role.AUTHORITY,))
    await web.user("alain.admin", "PP", roles=(Role.ADMINISTRATOR,))
    await web.user("sarah.secu", "PP", roles=(Role.SECURITY_OFFICER,), clearance="NP")
    await web.user("maria.audit", "CNCS")  # her organisation requires MFA: enrolment
    await web.user("paul.code", "PP")  # two-factor on: the code step of the sign-in
    enrolment = await web.api("paul.code", "POST", "/auth/mfa/enrol")
    await web.api(
        "paul.code",
        "POST",
        "/auth/mfa/confirm",
        json={"otp": pyotp.TOTP(enrolment["secret"]).now()},
    )

    situation = await web.situation("sophie.martin", title="Affluence Stade de France")
    entry = await web.entry(
        "sophie.martin",
        title="Colis suspect porte de la Chapelle",
        body="Périmètre de **sécurité** établi, démineurs prévenus.",
        severity="major",
        location={"type": "Point", "coordinates": [2.3601, 48.8984]},
        situation_id=situation["id"],
        label={"level": "DR", "audience": []},
    )
    headers = await web.headers("sophie.martin")
    photo = make_photo(tmp_path / "colis.jpg")
    upload = await web.client.post(
        f"/api/v1/entries/{entry['id']}/attachments",
        files={"file": ("colis.jpg", photo.read_bytes(), "image/jpeg")},
        headers=headers,
    )
    assert upload.status_code == 201, upload.text
    read = await web.client.get(f"/api/v1/entries/{entry['id']}", headers=headers)
    patched = await web.client.patch(
        f"/api/v1/entries/{entry['id']}",
        json={"body": "Périmètre de **sécurité** élargi, démineurs sur place."},
        headers={**headers, "If-Match": read.headers["etag"]},
    )
    assert patched.status_code == 200, patched.text
    await web.api(
        "julien.petit", "POST", f"/entries/{entry['id']}/comments", json={"body": "Vu, merci."}
    )
    own = await web.entry(
        "mehdi.kaci",
        title="Malaise spectateur tribune sud",
        body="Victime consciente, prise en charge par le poste de secours.",
        category="health",
        location={"type": "Point", "coordinates": [2.3601, 48.9245]},
        label=PUBLIC,
    )
    await web.entry("mehdi.kaci", title="Colis abandonné quai 3", category="health", label=PUBLIC)
    async with tx(web.app) as session:
        past = datetime(2024, 7, 1, tzinfo=UTC)
        session.add(Follow(user_id=sophie.id, kind="category", target="health", created_at=past))
    zone = await web.api(
        "sophie.martin",
        "POST",
        "/zones",
        json={"name": "Périmètre Chapelle", "geometry": SQUARE, "label": PUBLIC},
    )

    draft = await web.api(
        "sophie.martin", "POST", "/syntheses", json={"title": "Point de 19 h", **DAY}
    )
    sent = await web.api(
        "sophie.martin", "POST", "/syntheses", json={"title": "Point de 18 h", **DAY}
    )
    narrative = {"narrative": NARRATIVE}
    await web.api("sophie.martin", "PATCH", f"/syntheses/{sent['id']}", json=narrative)
    await web.api("sophie.martin", "POST", f"/syntheses/{sent['id']}/submit")
    await web.api("julien.petit", "POST", f"/syntheses/{sent['id']}/validate")
    await web.api(
        "julien.petit", "POST", f"/syntheses/{sent['id']}/send", json={"users": ["helene.prefete"]}
    )
    waiting = await web.api(
        "sophie.martin", "POST", "/syntheses", json={"title": "Point de 20 h", **DAY}
    )
    await web.api("sophie.martin", "POST", f"/syntheses/{waiting['id']}/submit")
    return {
        "entry": entry["id"],
        "own": own["id"],
        "situation": situation["id"],
        "zone": zone["id"],
        "draft": draft["id"],
        "sent": sent["id"],
        "mehdi": str(mehdi.id),
    }


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
async def test_every_page_has_no_violation(web: Web, tmp_path: Path, viewport: str) -> None:
    if not AXE.exists():
        unavailable(f"{AXE} is missing: run `npm ci --ignore-scripts` at the repository root")
    ids = await world(web, tmp_path)
    size = VIEWPORTS[viewport]
    found: dict[str, list[dict[str, Any]]] = {}
    missing = f"/entrees/{uuid.uuid4()}"

    async def check(page: Page, shown: Shown) -> None:
        if shown.path:
            response = await page.goto(shown.path)
            assert response is not None and response.status == shown.status, shown
        await expect(page.locator(shown.ready).first).to_be_visible()
        await screenshot(page, f"{shown.name}-{viewport}")
        found[shown.name] = await axe(page)

    # Two screens at once (the pages are independent): a shorter run that a busy machine
    # still serves within the timeouts.
    turns = asyncio.Semaphore(2)

    async def signed_out() -> None:
        async with turns:
            await signed_out_pages()

    async def signed_out_pages() -> None:
        page = await web.page(bypass_csp=True, viewport=size)
        await check(page, Shown("sign-in", "/connexion", "#username"))
        await web.sign_in(page, "paul.code")
        await check(page, Shown("sign-in-code", "", "form#etape-code #otp"))
        page = await web.page(bypass_csp=True, viewport=size)
        await page.goto("/connexion")
        await web.sign_in(page, "maria.audit")
        await check(page, Shown("mfa-enrolment", "", "#cle-totp"))

    async def signed_in(username: str, pages: list[Shown]) -> None:
        async with turns:
            page = await web.signed_in(username, "/aide", bypass_csp=True, viewport=size)
            for shown in pages:
                await check(page, shown)

    entry, own = ids["entry"], ids["own"]
    await asyncio.gather(
        signed_out(),
        signed_in("mehdi.kaci", [  # an officer
            Shown("feed", "/main-courante", "#fil li.hv-card"),
            Shown("feed-panel", f"/main-courante?entree={own}", "#detail #entree"),
            Shown("new-entry", "/main-courante/nouvelle", "#carte-saisie.leaflet-container"),
            Shown("entry", f"/entrees/{own}", ".hv-map.leaflet-container"),
            Shown("correction", f"/entrees/{own}/corriger", "#carte-correction.leaflet-container"),
            Shown("who-can-read", f"/entrees/{own}/diffusion", "h1"),
            Shown("map", "/carte", "#carte[data-total]"),
            Shown("search", "/recherche?q=colis", ".hv-results mark"),
            Shown("search-suggestion", "/recherche?q=colus", "h1"),
            Shown("help", "/aide", "#revoir-visite"),
            Shown("inbox-officer", "/boite", "h1"),
            Shown("not-found", missing, "h1", 404),
        ]),
        signed_in("sophie.martin", [  # a watch officer, author of the syntheses
            Shown("entry-full", f"/entrees/{entry}", ".hv-map.leaflet-container"),
            Shown("follows", "/suivis", ".hv-follows li"),
            Shown("situations", "/situations", "table a"),
            Shown("situation", f"/situations/{ids['situation']}", "h1"),
            Shown("zones", f"/carte?zone={ids['zone']}", "#zones-titre"),
            Shown("zone-who-can-read", f"/carte/zones/{ids['zone']}/diffusion", "h1"),
            Shown("syntheses", "/syntheses", "#nouvelle-synthese"),
            Shown("synthesis-draft", f"/syntheses/{ids['draft']}", "#redaction"),
            Shown("synthesis", f"/syntheses/{ids['sent']}", "h1"),
            Shown("synthesis-who-can-read", f"/syntheses/{ids['sent']}/diffusion", "h1"),
        ]),
        signed_in("julien.petit", [  # a watch officer with a synthesis to validate
            Shown("feed-watch-officer", "/main-courante", "#fil li.hv-card"),
        ]),
        signed_in("helene.prefete", [  # an authority
            Shown("inbox", "/boite", "h1"),
            Shown("synthesis-authority", f"/syntheses/{ids['sent']}", "h1"),
            Shown("feed-authority", "/main-courante", "#fil li.hv-card"),
        ]),
        signed_in("alain.admin", [  # an administrator: no read action in the policy
            Shown("admin-home", "/main-courante", "h1", 403),
        ]),
        signed_in("sarah.secu", [  # a security officer: the console (ADR 0039)
            Shown("security-console", "/securite", "#journal-direct tr"),
            Shown("who-saw-this", f"/securite/qui-a-vu?type=entry&id={entry}", "#qui-a-vu"),
            Shown("person-activity", f"/securite/personnes/{ids['mehdi']}", "#activite"),
        ]),
    )  # fmt: skip

    print(f"\naxe, violations per page ({viewport}):")  # noqa: T201 - for the review
    for name, violations in sorted(found.items()):
        listed = [f"{v['id']} ({v['impact']}) on {v['targets'][:3]}" for v in violations]
        print(f"  {name}: {'; '.join(listed) or 'none'}")  # noqa: T201
    assert not any(found.values()), f"violations ({viewport}):\n" + report(found)


BOXES = """(el) => [...el.querySelectorAll('.hv-marker')].map((m) => {
  const r = m.getBoundingClientRect();
  return { x: r.x, y: r.y, w: r.width, h: r.height, text: m.textContent };
})"""


async def test_map_markers_are_whole_targets_that_never_overlap(web: Web) -> None:
    """Each marker of the map is a target of 24 × 24 px at least, clear of the others (WCAG 2.2
    target size): a point 23 px from another and one 30 px from it (at zoom 15) make one group
    of three, where the 28 px grouping alone left a group and a point overlapping."""
    if not AXE.exists():
        unavailable(f"{AXE} is missing: run `npm ci --ignore-scripts` at the repository root")
    await web.org("PP")
    await web.user("antoine.roux", "PP")
    lon, lat = 2.3212, 48.8656
    for offset, severity in ((0.0, "info"), (0.0010, "minor"), (0.0013, "major"), (0.006, "info")):
        await web.entry(
            "antoine.roux",
            title=f"Foule {offset}",
            severity=severity,
            location={"type": "Point", "coordinates": [lon + offset, lat]},
            label=PUBLIC,
        )
    page = await web.signed_in(
        "antoine.roux", f"/carte?lat={lat}&lon={lon + 0.003}&z=15", bypass_csp=True
    )
    carte = page.locator("#carte")
    await expect(carte).to_have_attribute("data-total", "4")
    await expect(carte).to_have_attribute("data-markers", "2")
    group = carte.locator(".hv-marker--cluster")
    await expect(group).to_have_text("3")
    await expect(group).to_have_class(re.compile("hv-marker--major"))  # the gravest of the three
    boxes = await carte.evaluate(BOXES)
    assert all(b["w"] >= 24 and b["h"] >= 24 for b in boxes), boxes
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            apart = (
                a["x"] + a["w"] <= b["x"]
                or b["x"] + b["w"] <= a["x"]
                or a["y"] + a["h"] <= b["y"]
                or b["y"] + b["h"] <= a["y"]
            )
            assert apart, (a, b)
    assert await axe(page) == []

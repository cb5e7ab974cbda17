"""Accessibility of the main pages, checked by axe-core in the browser: no violation of impact
"serious" or "critical". Each page is also saved as a full-page screenshot for review
(test-artifacts/screenshots/<name>.png).

axe is injected as a script: these pages are opened in a context that bypasses the
Content-Security-Policy (it forbids any script the application does not serve itself)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from playwright.async_api import Page, expect

from hypervision.follows.models import Follow
from hypervision.policy.roles import Role
from tests.browser.web import AXE, SQLITE_ONLY, Web, make_photo, screenshot, unavailable
from tests.factories import tx

pytestmark = SQLITE_ONLY  # markup: the same HTML on both engines

SERIOUS = ("serious", "critical")


async def axe(page: Page) -> list[dict[str, Any]]:
    """The page's axe violations: rule, impact, and the nodes' selectors."""
    await page.add_script_tag(path=AXE)
    results = await page.evaluate("() => axe.run(document, { resultTypes: ['violations'] })")
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


async def test_main_pages_have_no_serious_violation(web: Web, tmp_path: Path) -> None:
    if not AXE.exists():
        unavailable(f"{AXE} is missing: run `npm ci --ignore-scripts` at the repository root")
    await web.org("PP", default_category="public_order")
    await web.org("SAMU")
    await web.org("CNCS", mfa=True)
    sophie = await web.user("sophie.martin", "PP", roles=(Role.WATCH_OFFICER,))
    await web.user("mehdi.kaci", "SAMU")
    await web.user("maria.audit", "CNCS")
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
        "mehdi.kaci", "POST", f"/entries/{entry['id']}/comments", json={"body": "Équipe en route."}
    )
    for title in ("Malaise spectateur tribune sud", "Colis abandonné quai 3"):
        await web.entry(
            "mehdi.kaci", title=title, category="health", label={"level": "NP", "audience": []}
        )
    async with tx(web.app) as session:
        past = datetime(2024, 7, 1, tzinfo=UTC)
        session.add(Follow(user_id=sophie.id, kind="category", target="health", created_at=past))

    synthesis = await web.api(
        "sophie.martin",
        "POST",
        "/syntheses",
        json={"title": "Point de 19 h", "scope": {"hours": 24}},
    )
    found: dict[str, list[dict[str, Any]]] = {}

    async def check(page: Page, name: str, path: str, ready: str, image: str) -> None:
        if path:
            await page.goto(path)
        await expect(page.locator(ready).first).to_be_visible()
        await screenshot(page, image)
        found[name] = await axe(page)

    async def signed_out() -> None:
        page = await web.page(bypass_csp=True)
        await check(page, "sign-in", "/connexion", "#username", "connexion")
        await web.sign_in(page, "maria.audit")  # her organisation requires MFA: enrolment
        await check(page, "MFA enrolment", "", "#cle-totp", "double-authentification")

    async def signed_in(pages: list[tuple[str, str, str, str]]) -> None:
        page = await web.signed_in("sophie.martin", "/aide", bypass_csp=True)
        for name, path, ready, image in pages:
            await check(page, name, path, ready, image)

    # Three officers' screens at once (the pages are independent): a shorter run.
    await asyncio.gather(
        signed_out(),
        signed_in(
            [
                ("feed", "/main-courante", "#fil li.hv-card", "main-courante"),
                ("new entry", "/main-courante/nouvelle", "#carte-saisie.leaflet-container",
                 "nouvelle-entree"),
                ("entry page", f"/entrees/{entry['id']}", ".hv-map.leaflet-container", "entree"),
                ("situations", "/situations", "table a", "situations"),
                ("map", "/carte", "#carte[data-total]", "carte"),
            ]
        ),
        signed_in(
            [
                ("feed with panel", f"/main-courante?entree={entry['id']}", "#detail #entree",
                 "panneau"),
                ("situation page", f"/situations/{situation['id']}", ".hv-timeline li",
                 "situation"),
                ("search results", "/recherche?q=colis", ".hv-results mark", "recherche"),
                ("following", "/suivis", ".hv-follows li", "suivis"),
                ("help", "/aide", "#revoir-visite", "aide"),
                ("syntheses", "/syntheses", "#nouvelle-synthese", "syntheses"),
                ("synthesis draft", f"/syntheses/{synthesis['id']}", "#redaction", "synthese"),
                ("inbox", "/boite", "h1", "boite"),
            ]
        ),
    )  # fmt: skip

    print("\naxe, violations per page:")  # noqa: T201 - for the review
    for name, violations in sorted(found.items()):
        listed = [f"{v['id']} ({v['impact']}) on {v['targets'][:3]}" for v in violations]
        print(f"  {name}: {'; '.join(listed) or 'none'}")  # noqa: T201
    serious = {name: [v for v in vs if v["impact"] in SERIOUS] for name, vs in found.items()}
    assert not any(serious.values()), "serious or critical violations:\n" + report(serious)

"""Issue 18's "Done when", in the browser: a non-technical officer builds the space "Suivi
transport" from an empty page — a key figure, a line chart over a data product, the feed
filtered on transport, the map — in at most 20 counted actions, and shares it with an
organisation; a reader of that organisation sees it update live when a row is imported into
the product and when an entry is created; a reader with fewer rights sees less and nothing
more: the chart's placeholder is the one a missing source gets, the counts are lower.
The editor is also checked on a phone (axe, no page wider than the screen), and the three
template spaces are saved as screenshots (test-artifacts/screenshots/espace-<code>.png)."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from playwright.async_api import Page, expect

from hypervision.policy.roles import Role
from tests.browser.test_accessibility import axe, report
from tests.browser.web import (
    DESKTOP,
    PHONE,
    SQLITE_ONLY,
    Counted,
    Web,
    live_stream_open,
    screenshot,
    t,
)

MAX_ACTIONS = 20
NEAR_GARE_DE_LYON = {"type": "Point", "coordinates": [2.3735, 48.8443]}
EVERYONE = {"level": "NP", "audience": []}
SCHEMA = {
    "fields": [
        {"name": "heure", "type": "datetime", "title": "Heure"},
        {"name": "ligne", "type": "string", "title": "Ligne"},
        {"name": "voyageurs", "type": "integer", "title": "Voyageurs"},
    ]
}


def hours_ago(hours: int) -> str:
    return (datetime.now(UTC) - timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ")


async def traffic_product(web: Web, steward: str) -> str:
    """A DR product of passenger counts, released to every organisation."""
    made = await web.api(
        steward,
        "POST",
        "/products",
        json={
            "slug": "frequentation-transport",
            "name": "Fréquentation des transports",
            "description": "Voyageurs par ligne et par heure",
            "table_schema": SCHEMA,
            "label": {"level": "DR", "audience": []},
        },
    )
    await import_rows(web, steward, made["id"], [(30, "RER A", 1200), (26, "M14", 800)], "replace")
    await web.api(steward, "POST", f"/products/{made['id']}/status", json={"status": "active"})
    return str(made["id"])


async def import_rows(
    web: Web, steward: str, pid: str, rows: list[tuple[int, str, int]], mode: str = "append"
) -> None:
    csv = "heure,ligne,voyageurs\n" + "".join(f"{hours_ago(h)},{li},{n}\n" for h, li, n in rows)
    await web.api(
        steward,
        "POST",
        f"/products/{pid}/imports",
        files={"file": ("frequentation.csv", csv.encode(), "text/csv")},
        data={"mode": mode},
    )


async def values(page: Page, module: str) -> list[str]:
    return await page.locator(f"{module} .hv-chart__value").all_text_contents()


async def loaded(page: Page, count: int) -> None:
    await expect(page.locator(".hv-module .hv-module__body")).to_have_count(count)


async def test_an_officer_builds_and_shares_suivi_transport_and_readers_see_it_live(
    web: Web,
) -> None:
    for org in ("PREF", "RATP", "DIRIF"):
        await web.org(org)
    await web.user("claire.martin", "PREF")  # a liaison officer, no technical training
    await web.user("paul.gestion", "RATP", roles=(Role.DATA_STEWARD,))
    await web.user("ines.lecture", "DIRIF")  # cleared DR
    await web.user("leo.stagiaire", "DIRIF", clearance="NP")
    pid = await traffic_product(web, "paul.gestion")
    for title, level in (("Panne de signalisation RER B", "NP"), ("Colis suspect M14", "DR")):
        await web.entry(
            "claire.martin",
            title=title,
            category="transport",
            location=NEAR_GARE_DE_LYON,
            label={"level": level, "audience": []},
        )
    await web.entry("claire.martin", title="Rixe place de la Nation", label=EVERYONE)

    page = await web.signed_in("claire.martin", "/espaces")
    user = Counted(page)
    await user.fill("#espace-titre", "Suivi transport")
    await user.click("#creer")  # the empty page is the default choice
    await expect(page).to_have_url(re.compile(r"/espaces/[0-9a-f-]{36}/modifier$"))
    sid = page.url.split("/")[-2]
    await expect(page.locator("#editeur-vide")).to_be_visible()
    await expect(page.locator("#editeur")).to_have_attribute("data-ready", "1")

    await user.click("#ajouter-kpi")  # a key figure: the entries of the last 24 hours
    await user.fill("#reglage-titre", "Événements transport (24 h)")
    await user.click("#ajouter-chart")
    await user.select_option("#reglage-source", pid)  # its date field, by day: preset
    await expect(page.locator("#reglage-groupe")).to_have_value("heure")
    await user.select_option("#reglage-graphique", "line")
    await user.click("#ajouter-feed")
    await user.click("label[for=reglage-categories-transport]")
    await user.click("#ajouter-map")
    await user.click("#editeur-grille [data-id^=kpi]")  # the key figure, one column wider
    await user.key("Shift+ArrowRight")
    await expect(page.locator("#editeur-annonce")).to_contain_text("4 colonnes de large")
    await user.click("label[for=partage-DIRIF]")
    await expect(page.locator("#editeur-etat")).to_contain_text("Enregistré")
    await expect(page.locator("#editeur-grille .hv-module__body")).to_have_count(4)
    await expect(page.locator("#editeur-grille .hv-chart")).to_have_count(1)  # the preview
    await screenshot(page, "espace-editeur-desktop")
    await user.click("#voir-espace")
    await expect(page).to_have_url(f"{web.base}/espaces/{sid}")
    await loaded(page, 4)

    print(f"Suivi transport built in {user.count} actions: {user.actions}")  # noqa: T201
    assert user.count <= MAX_ACTIONS, user.actions
    saved = await web.api("claire.martin", "GET", f"/spaces/{sid}")
    kinds = {m["type"]: m for m in saved["modules"]}
    assert sorted(kinds) == ["chart", "feed", "kpi", "map"]
    assert kinds["kpi"]["w"] == 4 and kinds["kpi"]["title"] == "Événements transport (24 h)"
    assert kinds["chart"]["config"]["kind"] == "line"
    assert kinds["chart"]["config"]["product_id"] == pid
    assert kinds["feed"]["config"]["filter"]["categories"] == ["transport"]
    assert saved["label"]["audience"] == ["DIRIF", "PREF"]
    versions = await web.client.get(
        f"/api/v1/spaces/{sid}/versions", headers=await web.headers("claire.martin")
    )
    assert [v["action"] for v in versions.json()][:2] == ["create", "update"]  # saves: versions

    # A reader of the organisation it is shared with: live on an import and on a new entry.
    reader = await web.signed_in("ines.lecture", f"/espaces/{sid}")
    await loaded(reader, 4)
    await live_stream_open(reader)
    chart = f"#module-{kinds['chart']['id']}"
    kpi = reader.locator(f"#module-{kinds['kpi']['id']} .hv-kpi__value")
    feed = reader.locator(f"#module-{kinds['feed']['id']} .hv-module__list li")
    assert await values_total(reader, chart) == 2  # rows counted, per day
    await expect(kpi).to_have_text("3")
    await expect(feed).to_have_count(2)
    # from now on the stream pushes what an event changes (ADR 0052): the page asks nothing
    asked: list[str] = []
    reader.on("request", lambda r: asked.append(r.url) if "/modules" in r.url else None)
    await import_rows(web, "paul.gestion", pid, [(1, "RER A", 1500)])
    await eventually(lambda: values_total(reader, chart), 3)
    await web.entry("claire.martin", title="Trafic interrompu ligne 1", category="transport",
                    label=EVERYONE)  # fmt: skip
    await expect(feed).to_have_count(3)
    await expect(feed.first).to_contain_text("Trafic interrompu ligne 1")
    await expect(kpi).to_have_text("4")
    assert asked == [], asked  # every module came through the stream

    # A reader with fewer rights: less, and nothing more (the placeholder of a missing source).
    witness = await web.api(
        "claire.martin",
        "POST",
        "/spaces",
        json={
            "title": "Témoin",
            "modules": [{**{k: v for k, v in kinds["chart"].items() if k != "known"},
                "id": "absent", "config": {**kinds["chart"]["config"],
                "product_id": str(uuid.uuid4())}}],
            "label": {"level": "NP", "audience": ["DIRIF"]},
        },
    )  # fmt: skip
    junior = await web.signed_in("leo.stagiaire", f"/espaces/{sid}")
    await loaded(junior, 4)
    hidden = junior.locator(f"{chart} .hv-module__body")
    await expect(hidden).to_have_attribute("data-status", "unavailable")
    missing = await junior.request.get(f"/espaces/{witness['id']}/modules/absent")
    assert await body_of(junior, await missing.text()) == await hidden.evaluate("b => b.outerHTML")
    await expect(junior.locator(f"#module-{kinds['kpi']['id']} .hv-kpi__value")).to_have_text("3")
    await expect(
        junior.locator(f"#module-{kinds['feed']['id']} .hv-module__list li")
    ).to_have_count(2)
    assert "Colis suspect M14" not in await junior.content()
    await expect(junior.locator("#marquage-haut")).to_be_hidden()
    await screenshot(reader, "espace-suivi-transport")


async def eventually(read: Callable[[], Awaitable[int]], wanted: int, seconds: int = 10) -> None:
    for _ in range(seconds * 5):
        if await read() == wanted:
            return
        await asyncio.sleep(0.2)
    assert await read() == wanted


async def values_total(page: Page, module: str) -> int:
    found = await values(page, module)
    return round(sum(float(v.replace(",", ".").replace("\u202f", "")) for v in found))


async def body_of(page: Page, html: str) -> str:
    return str(
        await page.evaluate(
            """h => new DOMParser().parseFromString(h, 'text/html')
                 .querySelector('.hv-module__body').outerHTML""",
            html,
        )
    )


@SQLITE_ONLY
@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
async def test_the_editor_works_by_buttons_and_keys_and_has_no_axe_violation(
    web: Web, viewport: dict[str, int]
) -> None:
    await web.org("PREF")
    await web.user("claire.martin", "PREF")
    made = await web.api("claire.martin", "POST", "/spaces", json={"title": "Poste"})
    page = await web.signed_in(
        "claire.martin", f"/espaces/{made['id']}/modifier", viewport=viewport, bypass_csp=True
    )
    await expect(page.locator("#editeur")).to_have_attribute("data-ready", "1")
    await page.click("#ajouter-text")
    await page.click("#ajouter-kpi")
    await expect(page.locator("#reglages")).to_be_visible()
    await page.click("#deplacer-bas")
    await expect(page.locator("#editeur-annonce")).to_contain_text("déplacé : ligne 2")
    await page.click("#annuler")
    await expect(page.locator("#editeur-annonce")).to_have_text(t("Undone."))
    await page.click("#retablir")
    await expect(page.locator("#editeur-etat")).to_contain_text("Enregistré")
    await page.fill("#espace-nom", "Poste de commandement")
    await page.fill("#espace-description", "Le site olympique nord")
    await page.fill("#partage-personnes", "claire.martin")
    await page.locator("#partage-personnes").blur()
    await expect(page.locator("#editeur-annonce")).to_have_text(t("Sharing saved."))
    wide = await page.evaluate("() => document.documentElement.scrollWidth")
    assert wide <= viewport["width"], (
        f"the page is {wide} px wide on a {viewport['width']} px screen"
    )
    kpi = page.locator("#editeur-grille [data-id^=kpi]")
    await kpi.focus()
    await page.keyboard.press("ArrowLeft")  # onto the text: it goes down, below the figure
    await expect(page.locator("#editeur-annonce")).to_contain_text("colonne 6")
    await page.keyboard.press("Shift+ArrowDown")
    await expect(page.locator("#editeur-annonce")).to_contain_text("3 lignes de haut")
    await expect(kpi).to_be_focused()
    found = await axe(page)
    name = "phone" if viewport is PHONE else "desktop"
    assert not found, report({f"editor-{name}": found})
    await screenshot(page, f"espace-editeur-clavier-{name}")
    await expect(page.locator("#editeur-etat")).to_contain_text("Enregistré")
    await page.wait_for_timeout(600)  # the last change's save
    stored = await web.api("claire.martin", "GET", f"/spaces/{made['id']}")
    assert (stored["title"], stored["description"], stored["people"]) == (
        "Poste de commandement",
        "Le site olympique nord",
        ["claire.martin"],
    )
    places = {m["type"]: (m["x"], m["y"], m["w"], m["h"]) for m in stored["modules"]}
    assert places == {"kpi": (5, 1, 3, 3), "text": (0, 4, 6, 2)}, places


@SQLITE_ONLY
async def test_a_conflict_is_told_with_a_reload_button(web: Web) -> None:
    await web.org("PREF")
    await web.user("claire.martin", "PREF")
    made = await web.api("claire.martin", "POST", "/spaces", json={"title": "Poste"})
    page = await web.signed_in("claire.martin", f"/espaces/{made['id']}/modifier")
    await expect(page.locator("#editeur")).to_have_attribute("data-ready", "1")
    await web.api(  # someone else saves meanwhile
        "claire.martin",
        "PATCH",
        f"/spaces/{made['id']}",
        json={"title": "Poste renommé"},
        headers={"If-Match": f'"{made["id"]}.1"'},
    )
    await page.click("#ajouter-text")
    conflict = page.locator("#editeur-conflit")
    await expect(conflict).to_be_visible()
    await expect(page.locator("#recharger")).to_be_focused()
    await page.click("#recharger")
    await expect(page.locator("#editeur-titre")).to_contain_text("Poste renommé")
    await expect(conflict).to_be_hidden()
    # the browser logs the refused PATCH: that is the conflict this test made
    web.errors[:] = [e for e in web.errors if "412" not in e]


@SQLITE_ONLY
async def test_screenshots_of_the_template_spaces(web: Web) -> None:
    await web.org("PREF")
    await web.user("claire.martin", "PREF", roles=(Role.WATCH_OFFICER,))
    samples: list[dict[str, Any]] = [
        {"title": "Malaise dans la tribune Nord", "category": "health", "severity": "major"},
        {"title": "Évacuation sanitaire porte H", "category": "rescue", "severity": "critical"},
        {"title": "Bagarre aux abords du stade", "category": "security", "severity": "minor"},
        {"title": "Retards RER D", "category": "transport", "severity": "info"},
    ]
    for sample in samples:
        await web.entry("claire.martin", location=NEAR_GARE_DE_LYON, **sample)
    await web.situation("claire.martin", title="Affluence au Stade de France")
    for code in ("poste-commandement-site", "cellule-sante", "cabinet-prefet"):
        made = await web.api(
            "claire.martin", "POST", "/spaces", json={"title": code, "template": code}
        )
        page = await web.signed_in("claire.martin", f"/espaces/{made['id']}")
        await loaded(page, len(made["modules"]))
        await expect(page.locator(".hv-module__body[data-status=ok]")).to_have_count(
            len(made["modules"])
        )
        await page.wait_for_timeout(500)  # the maps' tiles and fitting
        await screenshot(page, f"espace-{code}")

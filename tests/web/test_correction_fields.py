"""The correction form beyond title and text (both engines): category, tags and place are
corrected in one new version, a watch officer also qualifies the severity (a version of its
own), a venue's name or emptied coordinates move or remove the place, and a change made
meanwhile is still refused with 412, what was typed kept."""

from __future__ import annotations

import re
from html import unescape

from fastapi import FastAPI
from httpx import AsyncClient

from tests.web.conftest import Browser
from tests.web.pages import browse_as
from tests.web.test_edit import an_entry, etag_of, people, stored

__all__ = ["people"]  # the fixture, shared with test_edit


def form_of(html: str, **changes: str) -> dict[str, str]:
    """The correction form's fields as shown, with ``changes``."""
    text = unescape(html)
    values = {
        "etag": etag_of(html),
        "title": re.search(r'id="c-title" name="title"[^>]*value="([^"]*)"', text),
        "body": re.search(r'id="c-body" name="body"[^>]*>([^<]*)</textarea>', text),
        "tags": re.search(r'id="c-tags" name="tags"[^>]*value="([^"]*)"', text),
        "lat": re.search(r'id="lat" name="lat"[^>]*value="([^"]*)"', text),
        "lon": re.search(r'id="lon" name="lon"[^>]*value="([^"]*)"', text),
        "category": re.search(r'id="c-category".*?<option value="([^"]+)" selected', text, re.S),
    }
    found = {k: v if isinstance(v, str) else (v.group(1) if v else None) for k, v in values.items()}
    assert all(v is not None for v in found.values()), found
    return {**{k: str(v) for k, v in found.items()}, "place": "", **changes}


async def test_category_tags_and_place_in_one_version(
    app: FastAPI, client: AsyncClient, new_client: Browser, people: None
) -> None:
    entry_id = await an_entry(client)
    web = await new_client()
    csrf = await browse_as(web, "paul")  # same organisation as the author
    shown = (await web.get(f"/entrees/{entry_id}/corriger")).text
    current = form_of(shown)
    assert current["category"] == "security" and current["tags"] == "chapelle, colis"
    assert (current["lat"], current["lon"]) == ("48.89840", "2.36010")
    assert 'id="c-severity"' not in shown  # an officer does not qualify severity

    sent = form_of(shown, category="health", tags="colis, Malaise", lat="48.9", lon="2.37")
    saved = await web.post(f"/entrees/{entry_id}/corriger", data={"csrf_token": csrf, **sent})
    assert saved.status_code == 303, saved.text
    entry, versions = await stored(app, entry_id)
    assert entry.version == 2 and len(versions) == 2
    changed = set(versions[-1].changes)
    assert {"category", "location", "tags"} <= changed  # one version for the three
    assert not changed & {"title", "body", "severity", "status"}
    assert entry.category == "health" and entry.tags == ["colis", "malaise"]
    assert entry.location == {"type": "Point", "coordinates": [2.37, 48.9]}

    shown = (await web.get(f"/entrees/{entry_id}/corriger")).text
    venue = form_of(shown, place="Stade de France")
    assert (await web.post(
        f"/entrees/{entry_id}/corriger", data={"csrf_token": csrf, **venue}
    )).status_code == 303  # fmt: skip
    entry, _ = await stored(app, entry_id)
    assert entry.location == {"type": "Point", "coordinates": [2.3601, 48.9245]}

    shown = (await web.get(f"/entrees/{entry_id}/corriger")).text
    nowhere = form_of(shown, lat="", lon="")
    assert (await web.post(
        f"/entrees/{entry_id}/corriger", data={"csrf_token": csrf, **nowhere}
    )).status_code == 303  # fmt: skip
    entry, versions = await stored(app, entry_id)
    assert entry.location is None and entry.version == 4 and len(versions) == 4

    bad = form_of((await web.get(f"/entrees/{entry_id}/corriger")).text, lat="nord", lon="2")
    refused = await web.post(f"/entrees/{entry_id}/corriger", data={"csrf_token": csrf, **bad})
    assert refused.status_code == 422
    assert "Indiquez une latitude et une longitude en degrés." in unescape(refused.text)
    assert (await stored(app, entry_id))[0].version == 4


async def test_a_watch_officer_qualifies_the_severity_and_conflicts_are_kept(
    app: FastAPI, client: AsyncClient, new_client: Browser, people: None
) -> None:
    entry_id = await an_entry(client)
    chef = await new_client()
    csrf = await browse_as(chef, "chef")
    shown = (await chef.get(f"/entrees/{entry_id}/corriger")).text
    assert re.search(r'id="c-severity".*?<option value="major" selected', shown, re.S)
    stale = form_of(shown, severity="critical", tags="colis, chapelle, alerte")

    paul = await new_client()
    paul_csrf = await browse_as(paul, "paul")  # meanwhile, the author's colleague corrects
    meanwhile = form_of((await paul.get(f"/entrees/{entry_id}/corriger")).text, title="Levé")
    done = await paul.post(
        f"/entrees/{entry_id}/corriger", data={"csrf_token": paul_csrf, **meanwhile}
    )
    assert done.status_code == 303

    conflict = await chef.post(f"/entrees/{entry_id}/corriger", data={"csrf_token": csrf, **stale})
    assert conflict.status_code == 412
    again = unescape(conflict.text)
    assert 'value="alerte, chapelle, colis"' in again or 'value="colis, chapelle, alerte"' in again
    assert 'id="version-actuelle"' in again
    entry, _ = await stored(app, entry_id)
    assert entry.severity == "major" and entry.version == 2  # nothing of the stale form

    retry = form_of(conflict.text, severity="critical", tags="colis, chapelle, alerte")
    saved = await chef.post(f"/entrees/{entry_id}/corriger", data={"csrf_token": csrf, **retry})
    assert saved.status_code == 303, saved.text
    entry, versions = await stored(app, entry_id)
    assert entry.severity == "critical" and entry.tags == ["alerte", "chapelle", "colis"]
    assert [v.action for v in versions[-2:]] == ["update", "severity"]

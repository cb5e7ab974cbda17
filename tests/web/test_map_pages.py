"""The map page over HTTP (both engines): drawing a zone, importing a layer with per-feature
errors, following a zone and being notified of entries inside it only."""

from __future__ import annotations

import json
import re

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy import func, select

from hypervision.geo.models import Layer, Zone
from hypervision.policy.roles import Role
from tests.factories import ENTRY, make_org, make_user, sign_in, tx
from tests.web.pages import browse_as

SQUARE = {
    "type": "Polygon",
    "coordinates": [[[2.28, 48.84], [2.32, 48.84], [2.32, 48.87], [2.28, 48.87], [2.28, 48.84]]],
}


@pytest.fixture
async def people(app: FastAPI) -> None:
    await make_org(app, "PREF")
    await make_user(app, "chef", "PREF", roles=[Role.WATCH_OFFICER], clearance="DR")
    await make_user(app, "agent", "PREF", clearance="NP")


async def count(app: FastAPI, model: type[Zone] | type[Layer]) -> int:
    async with tx(app) as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_watch_officers_draw_zones_officers_do_not(
    app: FastAPI, client: AsyncClient, people: None
) -> None:
    csrf = await browse_as(client, "chef")
    page = await client.get("/carte")
    assert page.status_code == 200 and 'id="zone-form"' in page.text
    missing = await client.post(
        "/carte/zones", data={"csrf_token": csrf, "name": "Sans forme", "geometry": ""}
    )
    assert missing.status_code == 422 and 'id="err-geometry"' in missing.text
    drawn = await client.post(
        "/carte/zones",
        data={
            "csrf_token": csrf,
            "name": "Périmètre test",
            "kind": "perimeter",
            "geometry": json.dumps(SQUARE),
            "level": "NP",
            "everyone": "1",
        },
    )
    assert drawn.status_code == 303 and drawn.headers["location"].startswith("/carte?zone=")
    assert await count(app, Zone) == 1
    transport = ASGITransport(app=app, client=("203.0.113.9", 50002))
    async with AsyncClient(transport=transport, base_url="https://testserver") as officer:
        officer_csrf = await browse_as(officer, "agent")
        page = await officer.get("/carte")
        assert "Périmètre test" in page.text and 'id="zone-form"' not in page.text
        refused = await officer.post(
            "/carte/zones",
            data={"csrf_token": officer_csrf, "name": "x", "geometry": json.dumps(SQUARE)},
        )
        assert refused.status_code == 403  # refused with an explanation page
        assert await count(app, Zone) == 1


async def test_layer_import_lists_each_bad_feature_and_keeps_nothing(
    app: FastAPI, client: AsyncClient, people: None
) -> None:
    csrf = await browse_as(client, "chef")
    bad = {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "geometry": {"type": "Point", "coordinates": [2.3, 48.8]}},
            {"type": "Feature", "geometry": {"type": "Point", "coordinates": [500, 48.8]}},
        ],
    }
    response = await client.post(
        "/carte/couches",
        data={"csrf_token": csrf, "name": "Bornes"},
        files={"file": ("bornes.geojson", json.dumps(bad).encode(), "application/geo+json")},
    )
    assert response.status_code == 422
    assert re.search(r"<li>[^<]*1[^<]*hors limites", response.text)
    assert await count(app, Layer) == 0
    good = {"type": "FeatureCollection", "features": bad["features"][:1]}
    done = await client.post(
        "/carte/couches",
        data={"csrf_token": csrf, "name": "Bornes", "level": "NP"},
        files={"file": ("bornes.geojson", json.dumps(good).encode(), "application/geo+json")},
    )
    assert done.status_code == 303 and await count(app, Layer) == 1
    assert "Bornes (1)" in (await client.get("/carte")).text


async def test_following_a_zone_counts_entries_inside_only(
    app: FastAPI, client: AsyncClient, people: None
) -> None:
    chef = await sign_in(client, "chef")
    zone = await client.post(
        "/api/v1/zones",
        json={"name": "Z", "geometry": SQUARE, "label": {"level": "NP", "audience": []}},
        headers=chef,
    )
    assert zone.status_code == 201, zone.text
    csrf = await browse_as(client, "agent")
    followed = await client.post(
        "/suivis", data={"csrf_token": csrf, "kind": "zone", "target": zone.json()["id"]}
    )
    assert followed.status_code == 303
    public = {"level": "NP", "need_to_know": [], "audience": []}
    for title, lon in (("Dans la zone", 2.30), ("Hors zone", 2.40)):
        made = await client.post(
            "/api/v1/entries",
            json={
                **ENTRY,
                "title": title,
                "category": "weather",
                "location": {"type": "Point", "coordinates": [lon, 48.85]},
                "label": public,
            },
            headers=chef,
        )
        assert made.status_code == 201
    page = await client.get("/aide")
    assert re.search(r"</span>1</span>", page.text)  # the badge: one new entry
    listing = await client.get("/suivis")
    assert "Dans la zone" in listing.text and "Hors zone" not in listing.text
    zone_filter = await client.get(f"/main-courante?zone={zone.json()['id']}")
    assert "Dans la zone" in zone_filter.text and "Hors zone" not in zone_filter.text

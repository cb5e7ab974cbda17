"""Zones, layers, map data and export through the API, on both engines."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import func, select

from hypervision.geo.models import Layer, LayerFeature
from hypervision.policy.roles import Role
from tests.factories import ENTRY, make_org, make_user, sign_in, tx

# A square around the Champ-de-Mars with a square hole in the middle.
OUTER = [[2.28, 48.84], [2.32, 48.84], [2.32, 48.87], [2.28, 48.87], [2.28, 48.84]]
HOLE = [[2.295, 48.85], [2.305, 48.85], [2.305, 48.86], [2.295, 48.86], [2.295, 48.85]]
ZONE = {"type": "Polygon", "coordinates": [OUTER, HOLE]}
PUBLIC = {"level": "NP", "need_to_know": [], "audience": []}


@pytest.fixture
async def people(app: FastAPI) -> None:
    await make_org(app, "PREF")
    await make_org(app, "MAIRIE")
    await make_user(app, "chef", "PREF", roles=[Role.WATCH_OFFICER], clearance="DR")
    await make_user(app, "agent", "MAIRIE", clearance="NP")


def point(lon: float, lat: float) -> dict[str, Any]:
    return {"type": "Point", "coordinates": [lon, lat]}


async def entry_at(client: AsyncClient, headers: dict[str, str], title: str, location: Any,
                   label: dict[str, Any] = PUBLIC) -> str:  # fmt: skip
    response = await client.post(
        "/api/v1/entries",
        json={**ENTRY, "title": title, "location": location, "label": label},
        headers=headers,
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def test_zone_filter_holes_and_borders(
    app: FastAPI, client: AsyncClient, people: None
) -> None:
    chef = await sign_in(client, "chef")
    zone = await client.post(
        "/api/v1/zones",
        json={
            "name": "Périmètre Champ-de-Mars",
            "kind": "perimeter",
            "geometry": ZONE,
            "label": PUBLIC,
        },
        headers=chef,
    )
    assert zone.status_code == 201, zone.text
    zid = zone.json()["id"]
    inside = await entry_at(client, chef, "dedans", point(2.285, 48.845))
    on_border = await entry_at(client, chef, "sur le bord", point(2.32, 48.855))
    on_hole_border = await entry_at(client, chef, "bord du trou", point(2.295, 48.855))
    in_hole = await entry_at(client, chef, "dans le trou", point(2.30, 48.855))
    outside = await entry_at(client, chef, "dehors", point(2.35, 48.855))
    corner_box = await entry_at(client, chef, "coin de la bbox, hors zone", point(2.33, 48.88))
    crossing = await entry_at(
        client,
        chef,
        "ligne qui traverse",
        {"type": "LineString", "coordinates": [[2.25, 48.845], [2.29, 48.845]]},
    )
    await entry_at(client, chef, "sans lieu", None)
    agent = await sign_in(client, "agent")
    for headers in (chef, agent):
        found = await client.get(f"/api/v1/entries?zone={zid}&limit=2", headers=headers)
        assert found.status_code == 200, found.text
        ids = [e["id"] for e in found.json()["items"]]
        cursor = found.json()["next_cursor"]
        while cursor:
            more = await client.get(
                f"/api/v1/entries?zone={zid}&limit=2&cursor={cursor}", headers=headers
            )
            ids += [e["id"] for e in more.json()["items"]]
            cursor = more.json()["next_cursor"]
        assert set(ids) == {inside, on_border, on_hole_border, crossing}
        assert in_hole not in ids and outside not in ids and corner_box not in ids
        assert len(ids) == len(set(ids))  # paginated without repeats


async def test_map_data_in_a_zone_shows_what_lies_in_it_as_points_or_clusters(
    app: FastAPI, client: AsyncClient, people: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The map's zone path: candidates by the zone's bbox, the exact shape decides."""
    from hypervision.geo import mapdata

    chef = await sign_in(client, "chef")
    zone = await client.post(
        "/api/v1/zones", json={"name": "Z", "geometry": ZONE, "label": PUBLIC}, headers=chef
    )
    assert zone.status_code == 201, zone.text
    inside = {
        await entry_at(client, chef, "dedans", point(2.285, 48.845)): (2.285, 48.845),
        await entry_at(client, chef, "sur le bord", point(2.32, 48.855)): (2.32, 48.855),
        await entry_at(
            client, chef, "ligne", {"type": "LineString", "coordinates": [[2.25, 48.845],
                                                                         [2.29, 48.847]]}
        ): (2.27, 48.846),
    }  # fmt: skip
    await entry_at(client, chef, "dans le trou", point(2.30, 48.855))
    await entry_at(client, chef, "dehors", point(2.35, 48.855))
    await entry_at(
        client, chef, "secret", point(2.286, 48.846), {"level": "DR", "need_to_know": [],
                                                       "audience": []}
    )  # fmt: skip
    params = {"zone": zone.json()["id"], "view": "2.2,48.8,2.4,48.9", "zoom": 16}
    agent = await sign_in(client, "agent")
    shown = (await client.get("/api/v1/map/entries", params=params, headers=agent)).json()
    assert not shown["clustered"] and shown["total"] == 3
    assert {p["id"]: (p["lon"], p["lat"]) for p in shown["points"]} == inside
    assert {p["title"] for p in shown["points"]} == {"dedans", "sur le bord", "ligne"}
    monkeypatch.setattr(mapdata, "POINTS_MAX", 2)
    grouped = (await client.get("/api/v1/map/entries", params=params, headers=agent)).json()
    assert grouped["clustered"] and not grouped["points"] and grouped["total"] == 3
    assert sum(c["count"] for c in grouped["clusters"]) == 3
    chef_total = (await client.get("/api/v1/map/entries", params=params, headers=chef)).json()
    assert chef_total["total"] == 4


async def test_zones_are_checked_labelled_and_versioned(
    app: FastAPI, client: AsyncClient, people: None
) -> None:
    chef = await sign_in(client, "chef")
    bowtie = {
        "type": "Polygon",
        "coordinates": [[[2.0, 48.0], [2.1, 48.1], [2.1, 48.0], [2.0, 48.1], [2.0, 48.0]]],
    }
    bad = await client.post("/api/v1/zones", json={"name": "x", "geometry": bowtie}, headers=chef)
    assert bad.status_code == 422 and "auto-intersection" in bad.json()["error"]["message"]
    far = {"type": "Polygon", "coordinates": [[[2, 48], [200, 48], [2, 49], [2, 48]]]}
    out = await client.post("/api/v1/zones", json={"name": "x", "geometry": far}, headers=chef)
    assert out.status_code == 422 and "hors limites" in out.json()["error"]["message"]
    line = {"type": "LineString", "coordinates": [[2, 48], [2.1, 48.1]]}
    assert (
        await client.post("/api/v1/zones", json={"name": "x", "geometry": line}, headers=chef)
    ).status_code == 422
    agent = await sign_in(client, "agent")
    forbidden = await client.post(
        "/api/v1/zones", json={"name": "Mine", "geometry": ZONE}, headers=agent
    )
    assert forbidden.status_code == 403
    secret = await client.post(
        "/api/v1/zones",
        json={"name": "Évacuation", "kind": "evacuation", "geometry": ZONE,
              "label": {"level": "DR", "need_to_know": [], "audience": []}},
        headers=chef,
    )  # fmt: skip
    assert secret.status_code == 201
    zid = secret.json()["id"]
    hidden = await client.get(f"/api/v1/zones/{zid}", headers=agent)
    assert hidden.status_code == 404
    assert (await client.get(f"/api/v1/entries?zone={zid}", headers=agent)).status_code == 404
    assert zid not in [z["id"] for z in (await client.get("/api/v1/zones", headers=agent)).json()]
    current = await client.get(f"/api/v1/zones/{zid}", headers=chef)
    renamed = await client.patch(
        f"/api/v1/zones/{zid}",
        json={"name": "Évacuation nord"},
        headers={**chef, "If-Match": current.headers["etag"]},
    )
    assert renamed.status_code == 200 and renamed.json()["version"] == 2
    stale = await client.patch(
        f"/api/v1/zones/{zid}",
        json={"name": "Conflit"},
        headers={**chef, "If-Match": current.headers["etag"]},
    )
    assert stale.status_code == 412


def collection(*features: Any) -> bytes:
    return json.dumps({"type": "FeatureCollection", "features": list(features)}).encode()


def feature(geometry: Any, **properties: Any) -> dict[str, Any]:
    return {"type": "Feature", "geometry": geometry, "properties": properties}


async def layer_count(app: FastAPI) -> tuple[int, int]:
    async with tx(app) as session:
        layers = await session.scalar(select(func.count()).select_from(Layer))
        features = await session.scalar(select(func.count()).select_from(LayerFeature))
        return int(layers or 0), int(features or 0)


async def test_malformed_geojson_is_refused_per_feature_and_nothing_is_kept(
    app: FastAPI, client: AsyncClient, people: None
) -> None:
    chef = await sign_in(client, "chef")
    body = collection(
        feature(point(2.3, 48.8), name="ok"),
        feature({"type": "Point", "coordinates": [2.3, 148.8]}, name="latitude"),
        feature({"type": "Circle", "coordinates": [2.3, 48.8]}, name="type"),
        {"type": "Feature", "properties": {}},
        feature(
            {"type": "Polygon", "coordinates": [[[2, 48], [2.1, 48], [2.1, 48.1]]]}, name="ouvert"
        ),
    )
    response = await client.post(
        "/api/v1/layers",
        data={"name": "Points d'eau"},
        files={"file": ("points.geojson", body, "application/geo+json")},
        headers=chef,
    )
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert [f["index"] for f in error["features"]] == [1, 2, 3, 4]
    assert "hors limites" in error["features"][0]["message"]
    assert "rien n'est importé" in error["message"]
    assert await layer_count(app) == (0, 0)
    for junk in (b"{not json", b'{"type": "Topology"}', collection()):
        refused = await client.post(
            "/api/v1/layers",
            data={"name": "x"},
            files={"file": ("x.geojson", junk, "application/json")},
            headers=chef,
        )
        assert refused.status_code == 422
    assert await layer_count(app) == (0, 0)


async def test_layers_import_read_by_bbox_and_policy(
    app: FastAPI, client: AsyncClient, people: None
) -> None:
    chef = await sign_in(client, "chef")
    body = collection(
        feature(point(2.30, 48.85), name="Hydrant 1"),
        feature(point(2.40, 48.90), name="Hydrant 2"),
        feature({"type": "LineString", "coordinates": [[2.3, 48.8], [2.31, 48.81]]}, name="Tuyau"),
    )
    made = await client.post(
        "/api/v1/layers",
        data={"name": "Hydrants", "level": "DR"},
        files={"file": ("h.geojson", body, "application/geo+json")},
        headers=chef,
    )
    assert made.status_code == 201, made.text
    lid = made.json()["id"]
    assert made.json()["feature_count"] == 3
    part = await client.get(
        f"/api/v1/layers/{lid}/features?bbox=2.25,48.8,2.35,48.86", headers=chef
    )
    names = sorted(f["properties"]["name"] for f in part.json()["features"])
    assert names == ["Hydrant 1", "Tuyau"]
    agent = await sign_in(client, "agent")
    assert (await client.get(f"/api/v1/layers/{lid}/features", headers=agent)).status_code == 404
    assert (await client.get("/api/v1/layers", headers=agent)).json() == []


async def test_map_data_points_then_clusters_only_what_is_visible(
    app: FastAPI, client: AsyncClient, people: None
) -> None:
    chef = await sign_in(client, "chef")
    dr = {"level": "DR", "need_to_know": [], "audience": []}
    public_ids = [
        await entry_at(client, chef, f"public {i}", point(2.30 + i * 0.001, 48.85))
        for i in range(3)
    ]
    secret_id = await entry_at(client, chef, "secret", point(2.301, 48.851), dr)
    view = "view=2.2,48.8,2.4,48.9&zoom=14"
    agent = await sign_in(client, "agent")
    few = await client.get(f"/api/v1/map/entries?{view}", headers=agent)
    assert few.status_code == 200, few.text
    data = few.json()
    assert not data["clustered"] and data["total"] == 3
    assert sorted(p["id"] for p in data["points"]) == sorted(public_ids)
    assert secret_id not in few.text and "secret" not in few.text
    full = (await client.get(f"/api/v1/map/entries?{view}", headers=chef)).json()
    assert full["total"] == 4
    filtered = await client.get(f"/api/v1/map/entries?{view}&severity=critical", headers=chef)
    assert filtered.json()["total"] == 0
    bad = await client.get("/api/v1/map/entries?view=1,2,3", headers=chef)
    assert bad.status_code == 422


async def test_map_clusters_count_every_visible_entry_once(
    app: FastAPI, client: AsyncClient, people: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hypervision.geo import mapdata

    monkeypatch.setattr(mapdata, "POINTS_MAX", 5)
    chef = await sign_in(client, "chef")
    for i in range(12):
        await entry_at(client, chef, f"e{i}", point(2.30 + (i % 4) * 0.02, 48.85 + (i // 4) * 0.01))
    await entry_at(
        client, chef, "DR", point(2.3, 48.85), {"level": "DR", "need_to_know": [], "audience": []}
    )
    agent = await sign_in(client, "agent")
    data = (
        await client.get("/api/v1/map/entries?view=2.2,48.8,2.4,48.9&zoom=11", headers=agent)
    ).json()
    assert data["clustered"] and not data["points"]
    assert sum(c["count"] for c in data["clusters"]) == data["total"] == 12
    for cluster in data["clusters"]:
        west, south, east, north = cluster["bbox"]
        assert west <= cluster["lon"] <= east and south <= cluster["lat"] <= north
    chef_total = (
        await client.get("/api/v1/map/entries?view=2.2,48.8,2.4,48.9&zoom=11", headers=chef)
    ).json()["total"]
    assert chef_total == 13


async def test_geojson_export_is_policy_filtered_and_audited(
    app: FastAPI, client: AsyncClient, people: None
) -> None:
    from hypervision.audit.models import AuditRecord

    chef = await sign_in(client, "chef")
    public = await entry_at(client, chef, "public", point(2.3, 48.85))
    secret = await entry_at(
        client,
        chef,
        "secret",
        point(2.3, 48.85),
        {"level": "DR", "need_to_know": [], "audience": []},
    )
    zone = await client.post(
        "/api/v1/zones", json={"name": "Z", "geometry": ZONE, "label": PUBLIC}, headers=chef
    )
    assert zone.status_code == 201
    agent = await sign_in(client, "agent")
    exported = await client.get("/api/v1/map/export", headers=agent)
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("application/geo+json")
    kinds = {(f["properties"]["kind"], f["properties"]["id"]) for f in exported.json()["features"]}
    assert ("entry", public) in kinds and ("zone", zone.json()["id"]) in kinds
    assert all(secret != ident for _, ident in kinds)
    async with tx(app) as session:
        actions = set(await session.scalars(select(AuditRecord.action)))
    assert {"entry.list", "zone.list", "map.entries"} >= {"entry.list", "zone.list"}
    assert "entry.list" in actions and "zone.list" in actions


def test_clusters_stay_bounded_whatever_the_zoom_asked() -> None:
    from hypervision.geo import mapdata

    view = (2.2, 48.8, 2.47, 48.92)
    assert mapdata.cell_for(11, view) == mapdata.cell_degrees(11)  # the usual ~64 px cells
    street = mapdata.cell_for(22, view)  # a Paris-wide view asked at street zoom
    assert (view[2] - view[0]) / street <= mapdata.GRID_MAX
    assert (view[3] - view[1]) / street <= mapdata.GRID_MAX

"""Announcements: published by the CNCS's watch officers and authorities only, their body
sanitised, their audience targeting organisations, their display window respected, every
read through the policy and audited, a live event on publication."""

from __future__ import annotations

import uuid

from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import select

from hypervision.events.models import OutboxEvent
from tests.factories import tx
from tests.hub.world import PUBLIC, at, cast

URL = "/api/v1/hub/announcements"


def announcement(**extra: object) -> dict[str, object]:
    return {
        "title": "Fermeture du périphérique",
        "body": "Le **périphérique** est fermé.<script>alert(1)</script>",
        "importance": "important",
        "label": PUBLIC,
        **extra,
    }


async def test_publish_and_read(app: FastAPI, client: AsyncClient) -> None:
    h = await cast(app, client)
    made = await client.post(URL, json=announcement(), headers=h["chef"])
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["shown"] is True and body["organisation"] == "MININT-CNCS"
    assert "<strong>périphérique</strong>" in body["body_html"]
    assert "<script" not in body["body_html"]
    urgent = await client.post(
        URL,
        json=announcement(
            title="Alerte", importance="urgent", label={**PUBLIC, "audience": ["PREF"]}
        ),
        headers=h["helene"],
    )
    assert urgent.status_code == 201, urgent.text
    later = await client.post(
        URL, json=announcement(title="Demain", starts_at=at(20)), headers=h["chef"]
    )
    assert later.json()["shown"] is False
    shown = (await client.get(URL, headers=h["olga"])).json()
    assert [a["title"] for a in shown["items"]] == ["Alerte", "Fermeture du périphérique"]
    every = (await client.get(URL + "?all=true", headers=h["olga"])).json()
    assert len(every["items"]) == 3
    only = (await client.get(URL + "?importance=urgent", headers=h["olga"])).json()
    assert [a["title"] for a in only["items"]] == ["Alerte"]
    # the audience: PREF and the author's organisation only
    mine = (await client.get(URL, headers=h["chef"])).json()
    assert len(mine["items"]) == 2
    withdrawn = await client.post(f"{URL}/{body['id']}/withdraw", headers=h["chef"])
    assert withdrawn.status_code == 200 and withdrawn.json()["shown"] is False
    assert (await client.post(f"{URL}/{body['id']}/withdraw", headers=h["chef"])).status_code == 409
    shown = (await client.get(URL, headers=h["olga"])).json()
    assert [a["title"] for a in shown["items"]] == ["Alerte"]
    edited = await client.patch(
        f"{URL}/{urgent.json()['id']}", json={"title": "Alerte levée"}, headers=h["chef"]
    )
    assert edited.status_code == 200 and edited.json()["version"] == 2
    async with tx(app) as session:
        events = list(
            await session.scalars(
                select(OutboxEvent.type).where(OutboxEvent.resource_type == "announcement")
            )
        )
    assert sorted(events) == sorted(
        ["announcement.create"] * 3 + ["announcement.withdraw", "announcement.update"]
    )


async def test_who_publishes(app: FastAPI, client: AsyncClient) -> None:
    h = await cast(app, client)
    for name in ("olga", "marc", "admin", "dr", "sec"):
        refused = await client.post(URL, json=announcement(), headers=h[name])
        assert refused.status_code == 403, name
    made = (await client.post(URL, json=announcement(), headers=h["chef"])).json()
    assert (
        await client.patch(f"{URL}/{made['id']}", json={"title": "x"}, headers=h["marc"])
    ).status_code == 403
    assert (await client.post(f"{URL}/{made['id']}/withdraw", headers=h["marc"])).status_code == 403


async def test_hidden_looks_missing_and_bad_input(app: FastAPI, client: AsyncClient) -> None:
    h = await cast(app, client)
    secret = await client.post(
        URL,
        json=announcement(label={"level": "DR", "need_to_know": ["VIP"], "audience": []}),
        headers=h["chef"],
    )
    assert secret.status_code == 201
    hidden = await client.get(f"{URL}/{secret.json()['id']}", headers=h["olga"])
    missing = await client.get(f"{URL}/{uuid.uuid4()}", headers=h["olga"])
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["error"] == missing.json()["error"]
    assert (await client.get(f"{URL}/{secret.json()['id']}", headers=h["dr"])).status_code == 200
    for bad in (
        {"title": ""},
        {"importance": "critique"},
        {"starts_at": at(2), "ends_at": at(1)},
        {"ends_at": "2024-07-26T20:00:00"},
        {"label": {"level": "TS"}},
        {"label": {**PUBLIC, "audience": ["NOPE"]}},
    ):
        answer = await client.post(URL, json=announcement(**bad), headers=h["chef"])
        assert answer.status_code == 422, (bad, answer.text)
    assert (await client.get(URL + "?importance=x", headers=h["olga"])).status_code == 422

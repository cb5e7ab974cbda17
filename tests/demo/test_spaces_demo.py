"""The demo's spaces (issue 18): the four templates, made by the officers who use them and
shared with their partners; every module shows something to its readers, and an officer of an
organisation it is not shared with does not see the space at all."""

from __future__ import annotations

from fastapi import FastAPI
from httpx import AsyncClient

from hypervision.demo import events, products, scenario, spaces
from hypervision.demo.scenario import DEMO_PASSWORD, username_of
from tests.factories import sign_in, tx


async def test_demo_spaces_show_every_module_to_their_readers(
    app: FastAPI, client: AsyncClient
) -> None:
    settings = app.state.settings
    for loader in (scenario.load, events.load, products.load):
        async with tx(app) as session:
            await loader(session, settings)
    async with tx(app) as session:
        assert await spaces.load(session, settings) == 4
    async with tx(app) as session:
        assert await spaces.load(session, settings) == 0

    karim = await sign_in(client, username_of("Karim Haddad"), DEMO_PASSWORD)
    listed = (await client.get("/api/v1/spaces", headers=karim)).json()["items"]
    titles = {s["title"] for s in listed}
    assert {"Cellule santé Île-de-France", "Suivi transport"} <= titles
    assert "PC Stade de France" not in titles
    for space in listed:
        for module in space["modules"]:
            url = f"/api/v1/spaces/{space['id']}/modules/{module['id']}/data"
            answer = (await client.get(url, headers=karim)).json()
            assert answer["status"] == "ok", (space["title"], module["id"], answer)

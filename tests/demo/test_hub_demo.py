"""The demo's hub: a dozen shifts in the operation's rooms (some on duty now, some next), two
documents and two announcements, loaded once; the hub page shows them."""

from __future__ import annotations

from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import func, select

from hypervision.demo import hub, scenario
from hypervision.hub.models import Announcement, DutyAssignment, HubDocument
from tests.factories import tx
from tests.web.pages import browse_as


async def test_demo_hub(app: FastAPI, client: AsyncClient) -> None:
    settings = app.state.settings
    async with tx(app) as session:
        await scenario.load(session, settings)
    async with tx(app) as session:
        assert await hub.load(session, settings) == len(hub.SHIFTS) == 12
    async with tx(app) as session:
        assert await hub.load(session, settings) == 0  # idempotent
        assert await session.scalar(select(func.count()).select_from(HubDocument)) == 2
        assert await session.scalar(select(func.count()).select_from(Announcement)) == 2
        rooms = set(await session.scalars(select(DutyAssignment.room)))
    assert {"Salle CNCS", "PC Stade de France"} <= rooms
    await browse_as(client, "antoine.roux", scenario.DEMO_PASSWORD)
    page = await client.get("/accueil")
    assert page.status_code == 200
    assert "Orages prévus en soirée" in page.text and "Marc Lefebvre" in page.text
    assert "Relève : Étienne Lacroix" in page.text
    assert "Numéros utiles des salles" in page.text
